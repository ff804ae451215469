"""Model outputs, with the field names and order of transformers' wav2vec 2.0 classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class Wav2Vec2BaseModelOutput(ModelOutput):
    """Encoder output.

    last_hidden_state: (B, F, D) contextualised frames c.
    extract_features: (B, F, C) normalised encoder features z (the quantizer input).
    hidden_states: input of every Transformer block, then the last block's output.
    attentions: (B, H, F, F) attention probabilities per block, when asked.
    """

    last_hidden_state: torch.Tensor | None = None
    extract_features: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class Wav2Vec2ForPreTrainingOutput(ModelOutput):
    """Self-supervised outputs; losses are sums over masked frames, as in transformers.

    loss: contrastive_loss + diversity_loss_weight x diversity_loss (+ feature penalty when enabled).
    projected_states: (B, F, P) contexts projected by ``project_hid``.
    projected_quantized_states: (B, F, P) quantized targets projected by ``project_q``.
    codevector_perplexity: perplexity of codebook usage over masked frames.
    contrastive_loss, diversity_loss: the two terms (diversity already scaled by the masked-frame count).
    mask_time_indices: (B, F) the time mask used (given or drawn by the model).
    sampled_negative_indices: (B, F, K) flat indices of the distractors used.
    contrastive_logits: (K + 1, B, F) similarities / kappa, positive first.
    """

    loss: torch.Tensor | None = None
    projected_states: torch.Tensor | None = None
    projected_quantized_states: torch.Tensor | None = None
    codevector_perplexity: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    contrastive_loss: torch.Tensor | None = None
    diversity_loss: torch.Tensor | None = None
    mask_time_indices: torch.Tensor | None = None
    sampled_negative_indices: torch.Tensor | None = None
    contrastive_logits: torch.Tensor | None = None


@dataclass
class CausalLMOutput(ModelOutput):
    """CTC head output: ``logits`` (B, F, V) and the CTC ``loss`` when labels are given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    """Utterance classification: ``logits`` (B, L)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    """Frame classification: ``logits`` (B, F, L)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class XVectorOutput(ModelOutput):
    """Speaker embedding head: ``embeddings`` (B, E) and AM-softmax ``logits`` (B, E)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
