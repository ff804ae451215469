"""Utterance and frame classification heads (SUPERB-style keyword spotting, speaker id, diarisation).

Shape legend: B batch, T samples, F frames, D model dim, R projector dim, L labels.

With ``config.use_weighted_layer_sum`` the heads read a softmax-weighted sum of
all ``num_hidden_layers + 1`` hidden states (learned ``layer_weights``) instead
of the last one, as in the SUPERB benchmark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import Wav2Vec2Config
from .modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel, _want_dict
from .outputs import SequenceClassifierOutput, TokenClassifierOutput
from .validation import check_labels


def num_labels(config: Wav2Vec2Config) -> int:
    """The config's number of classes (``num_labels``, from ``id2label``), checked to be set."""
    count = config.num_labels
    if count is None or count < 1:
        raise ValueError(f"config.num_labels must be a positive number of classes, got {count}")
    return count


def weighted_layer_sum(hidden_states: tuple[torch.Tensor, ...], layer_weights: torch.Tensor) -> torch.Tensor:
    """sum_l softmax(w)_l h_l over ``hidden_states`` (L+1 tensors of (B, F, D))."""
    stacked = torch.stack(hidden_states, dim=1)  # (B, L+1, F, D)
    weights = F.softmax(layer_weights, dim=-1)
    return (stacked * weights.view(-1, 1, 1)).sum(dim=1)  # (B, F, D)


class _ClassificationBase(Wav2Vec2PreTrainedModel):
    """Shared body: encoder plus optional learned layer weights."""

    adapter_task: str | None = None
    """Task name for the error raised when the head cannot read the conv adapter's frames (None: it can)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        if config.add_adapter and self.adapter_task is not None:
            raise ValueError(
                f"{self.adapter_task} does not support the use of Wav2Vec2 adapters (config.add_adapter=True)"
            )
        self.wav2vec2 = Wav2Vec2Model(config)
        if config.use_weighted_layer_sum:
            num_layers = config.num_hidden_layers + 1  # blocks + their input
            self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)

    def _features(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        weighted = self.config.use_weighted_layer_sum
        enc, _, _ = self.wav2vec2.encode(
            input_values, attention_mask, None, output_attentions, True if weighted else output_hidden_states
        )
        if weighted:
            assert enc.hidden_states is not None  # asked for above
            hidden = weighted_layer_sum(enc.hidden_states, self.layer_weights)
        else:
            assert enc.last_hidden_state is not None
            hidden = enc.last_hidden_state
        keep_hidden = output_hidden_states
        if keep_hidden is None:  # the config's default, as for the encoder and the CTC head
            keep_hidden = bool(getattr(self.config, "output_hidden_states", False))
        return hidden, enc.hidden_states if keep_hidden else None, enc.attentions


class Wav2Vec2ForSequenceClassification(_ClassificationBase):
    """Projector -> masked mean pooling over frames -> linear classifier."""

    adapter_task = "Sequence classification"

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.projector = nn.Linear(config.hidden_size, config.classifier_proj_size)
        self.classifier = nn.Linear(config.classifier_proj_size, num_labels(config))
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        """``labels`` (B,) class ids; cross-entropy loss."""
        hidden, all_hidden, attentions = self._features(
            input_values, attention_mask, output_attentions, output_hidden_states
        )
        projected = self.projector(hidden)  # (B, F, D) -> (B, F, R)
        padding_mask = self.frame_padding_mask(attention_mask, projected.shape[1])
        if padding_mask is None:
            pooled = projected.mean(dim=1)
        else:
            weights = padding_mask.to(projected.dtype)[..., None]  # (B, F) -> (B, F, 1)
            pooled = (projected * weights).sum(dim=1) / weights.sum(dim=1)  # (B, R)
        logits = self.classifier(pooled)  # (B, L)
        loss = None
        if labels is not None:
            check_labels(labels, num_labels(self.config), "num_labels", batch_size=logits.shape[0])
            loss = F.cross_entropy(logits.float().view(-1, num_labels(self.config)), labels.view(-1))
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden, attentions=attentions)
        return out if _want_dict(self.config, return_dict) else out.to_tuple()


class Wav2Vec2ForAudioFrameClassification(_ClassificationBase):
    """A linear classifier on every frame (e.g. speaker diarisation)."""

    adapter_task = "Audio frame classification"

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels(config))
        self.num_labels = num_labels(config)
        self.post_init()

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput | tuple:
        """``labels`` (B, F, L) one-hot (or multi-hot) frame targets; the loss is the
        cross-entropy against their argmax, as in transformers."""
        hidden, all_hidden, attentions = self._features(
            input_values, attention_mask, output_attentions, output_hidden_states
        )
        logits = self.classifier(hidden)  # (B, F, D) -> (B, F, L)
        loss = None
        if labels is not None:
            targets = labels.reshape(-1, self.num_labels).argmax(dim=1)  # (B, F, L) -> (B x F,)
            loss = F.cross_entropy(logits.float().reshape(-1, self.num_labels), targets)
        out = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=all_hidden, attentions=attentions)
        return out if _want_dict(self.config, return_dict) else out.to_tuple()
