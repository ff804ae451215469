"""CTC head for speech recognition (paper section 4, fine-tuning).

Shape legend: B batch, T samples, F frames, D model dim, V vocabulary, U label length.

A linear layer ``lm_head`` maps each context frame to V character logits; the
blank is the padding token (``config.pad_token_id``, ``[PAD]`` = 0 in our
vocabularies). No ``**kwargs`` in ``forward``: the Trainer then divides the loss
by the gradient-accumulation steps itself, so 2 x b accumulated gives the
gradients of one batch of 2b (with ``ctc_loss_reduction="sum"``).
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import Wav2Vec2Config
from .losses import ctc_loss
from .modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel, _want_dict
from .outputs import CausalLMOutput
from .validation import check_labels


class Wav2Vec2ForCTC(Wav2Vec2PreTrainedModel):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        if config.vocab_size is None:
            raise ValueError(
                "config.vocab_size is None: pass the size of your vocabulary, e.g. "
                "Wav2Vec2ForCTC.from_pretrained(path, vocab_size=len(tokenizer))"
            )
        self.wav2vec2 = Wav2Vec2Model(config)
        self.dropout = nn.Dropout(config.final_dropout)
        self.lm_head = nn.Linear(config.output_hidden_size, config.vocab_size)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        prefix_features: torch.Tensor | None = None,
        prefix_layers: int | torch.Tensor = 0,
    ) -> CausalLMOutput | tuple:
        """``labels`` (B, U): token ids, ``-100`` (or the blank id) on padding.

        A label sequence longer than its frames has no CTC alignment: its loss is
        ``inf`` (0 with ``config.ctc_zero_infinity``); filter such items before training.

        ``prefix_features`` (B, C, F_k) may replace ``input_values``: the output of the first
        ``prefix_layers`` conv blocks, e.g. cached once for frozen blocks by
        :class:`hf_w2v2.finetune.feature_cache.FrozenFeatureCache`; ``attention_mask`` (B, T)
        still marks each item's samples.
        """
        if labels is not None:
            check_labels(labels, self.config.vocab_size, batch_size=_batch_size(input_values, prefix_features))
        if (input_values is None) == (prefix_features is None):
            raise ValueError("pass exactly one of input_values (audio) and prefix_features (cached conv outputs)")
        enc, _, _ = self.wav2vec2.encode(
            input_values,
            attention_mask,
            None,
            output_attentions,
            output_hidden_states,
            prefix_features=prefix_features,
            prefix_layers=prefix_layers,
        )
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
                blank_id=self.config.pad_token_id,
                reduction=self.config.ctc_loss_reduction,
                zero_infinity=self.config.ctc_zero_infinity,
            )
        out = CausalLMOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states, attentions=enc.attentions)
        return out if _want_dict(self.config, return_dict) else out.to_tuple()


def _batch_size(input_values: torch.Tensor | None, prefix_features: torch.Tensor | None) -> int | None:
    source = input_values if input_values is not None else prefix_features
    return source.shape[0] if isinstance(source, torch.Tensor) and source.dim() > 0 else None
