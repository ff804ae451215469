"""CTC head for speech recognition (paper section 4, fine-tuning).

Shape legend: B batch, T samples, F frames, D model dim, V vocabulary, U label length.

A linear layer ``lm_head`` maps each context frame to V character logits; the
blank is the padding token (``config.pad_token_id``, ``[PAD]`` = 0 in our
vocabularies). No ``**kwargs`` in ``forward``: the Trainer then divides the loss
by the gradient-accumulation steps itself, so 2 x b accumulated gives the
gradients of one batch of 2b (with ``ctc_loss_reduction="sum"``).

MMS checkpoints (``adapter_attn_dim``) carry one adapter file per language:
``from_pretrained(path, target_lang="fra")`` or ``model.load_adapter("fra")`` loads it
(:mod:`.adapters`). With ``config.add_adapter`` the head reads the adapter's
``output_hidden_size`` features, and label lengths are checked against the adapted frames.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .configuration import Wav2Vec2Config
from .losses import ctc_loss
from .modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel, _want_dict
from .outputs import CausalLMOutput
from .validation import check_labels


class Wav2Vec2ForCTC(Wav2Vec2PreTrainedModel):
    def __init__(self, config: Wav2Vec2Config, target_lang: str | None = None) -> None:
        """``target_lang``: language of the adapter weights to load in :meth:`from_pretrained` (MMS)."""
        super().__init__(config)
        if config.vocab_size is None:
            raise ValueError(
                "config.vocab_size is None: pass the size of your vocabulary, e.g. "
                "Wav2Vec2ForCTC.from_pretrained(path, vocab_size=len(tokenizer))"
            )
        self.wav2vec2 = Wav2Vec2Model(config)
        self.dropout = nn.Dropout(config.final_dropout)
        head_input = (config.output_hidden_size or config.hidden_size) if config.add_adapter else config.hidden_size
        self.lm_head = nn.Linear(head_input, config.vocab_size)
        self.target_lang = target_lang
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.from_pretrained``; with ``target_lang`` the language's adapter file is then
        loaded over the checkpoint's weights (:meth:`load_adapter`, same Hub options)."""
        target_lang = kwargs.get("target_lang")
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if target_lang is not None:
            model = loaded[0] if isinstance(loaded, tuple) else loaded
            if getattr(model.config, "adapter_attn_dim", None) is None:
                raise ValueError(
                    f"Cannot pass `target_lang`: {target_lang} if `config.adapter_attn_dim` is not defined."
                )
            hub = {
                k: kwargs[k]
                for k in ("cache_dir", "force_download", "local_files_only", "token", "revision")
                if k in kwargs
            }
            model.load_adapter(target_lang, force_load=True, **hub)
        return loaded

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutput | tuple:
        """``labels`` (B, U): token ids, ``-100`` (or the blank id) on padding.

        A label sequence longer than its frames has no CTC alignment: its loss is
        ``inf`` (0 with ``config.ctc_zero_infinity``); filter such items before training.
        """
        if labels is not None:
            check_labels(labels, int(self.config.vocab_size or 0), batch_size=_batch_size(input_values))
        enc, _, _ = self.wav2vec2.encode(input_values, attention_mask, None, output_attentions, output_hidden_states)
        logits = self.lm_head(self.dropout(enc.last_hidden_state))  # (B, F, D) -> (B, F, V)
        loss = None
        if labels is not None:
            if attention_mask is None:
                frames = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
            else:
                frames = self.frame_lengths(attention_mask)
            loss = ctc_loss(
                logits,
                labels.to(logits.device),
                frames,
                blank_id=int(self.config.pad_token_id or 0),
                reduction=self.config.ctc_loss_reduction,
                zero_infinity=self.config.ctc_zero_infinity,
            )
        out = CausalLMOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states, attentions=enc.attentions)
        return out if _want_dict(self.config, return_dict) else out.to_tuple()


def _batch_size(input_values: torch.Tensor) -> int | None:
    return input_values.shape[0] if isinstance(input_values, torch.Tensor) and input_values.dim() > 0 else None
