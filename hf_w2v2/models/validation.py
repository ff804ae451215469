"""Input checks that fail early with a message, instead of a shape error deep inside."""

from __future__ import annotations

import torch

from .configuration import Wav2Vec2Config
from .lengths import receptive_field


def check_audio(input_values: torch.Tensor, config: Wav2Vec2Config, attention_mask: torch.Tensor | None) -> None:
    """Validate raw audio ``(B, T)`` before the feature encoder."""
    if not isinstance(input_values, torch.Tensor):
        raise ValueError(f"input_values must be a torch.Tensor, got {type(input_values).__name__}")
    if input_values.dim() != 2:
        raise ValueError(
            f"input_values must have shape (batch, samples), got {tuple(input_values.shape)}; "
            "add a batch axis with input_values[None] or down-mix multi-channel audio to mono"
        )
    if input_values.shape[0] == 0:
        raise ValueError(f"input_values holds an empty batch (shape {tuple(input_values.shape)})")
    if not torch.is_floating_point(input_values):
        raise ValueError(
            f"input_values must be floating point (got {input_values.dtype}); convert PCM integers "
            "to float, e.g. with the feature extractor, which also normalises"
        )
    field = receptive_field(config.conv_kernel, config.conv_stride)
    if input_values.shape[1] < field:
        raise ValueError(
            f"audio of {input_values.shape[1]} samples is shorter than the receptive field of the "
            f"feature encoder ({field} samples, {1000 * field / 16000:.0f} ms at 16 kHz)"
        )
    if not torch.isfinite(input_values).all():
        raise ValueError("input_values contains NaN or infinite samples")
    if attention_mask is not None:
        if attention_mask.shape != input_values.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_values "
                f"shape {tuple(input_values.shape)}"
            )
        shortest = int(attention_mask.to(torch.long).sum(dim=-1).min())
        if shortest < field:
            raise ValueError(f"an item has {shortest} valid samples, fewer than the receptive field ({field} samples)")


def check_labels(labels: torch.Tensor, num_classes: int, name: str = "vocab_size") -> None:
    """Labels must be below the number of classes; negative entries are padding."""
    if labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"label value {int(labels.max())} is out of range: {name} is {num_classes}")


def check_prefix_features(
    features: torch.Tensor, num_layers: int, config: Wav2Vec2Config, attention_mask: torch.Tensor | None
) -> None:
    """Validate ``(B, C, F_k)`` outputs of the first ``num_layers`` conv blocks given instead of audio."""
    if not 0 < num_layers <= len(config.conv_dim):
        raise ValueError(f"prefix_layers must be in [1, {len(config.conv_dim)}], got {num_layers}")
    channels = config.conv_dim[num_layers - 1]
    if features.dim() != 3 or features.shape[1] != channels:
        raise ValueError(
            f"prefix_features must have shape (batch, {channels}, frames) for prefix_layers={num_layers}, "
            f"got {tuple(features.shape)}"
        )
    if attention_mask is not None and attention_mask.shape[0] != features.shape[0]:
        raise ValueError(
            f"attention_mask has {attention_mask.shape[0]} rows but prefix_features has {features.shape[0]}"
        )
