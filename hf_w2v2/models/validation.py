"""Input checks that fail early with a message, instead of a shape error deep inside.

Every check runs on eager calls. Under tracing (``torch.compile``, ``torch.export``, ONNX
export) shape checks become ``torch._check`` assertions, which the traced graph keeps without a
graph break (the TorchScript tracer, which OpenVINO's converter uses, skips them), and checks
that read tensor *values* (NaN samples, mask values, label range) are skipped: they would need a
host sync and a data-dependent branch. Validate the values before calling an exported program
(:func:`hf_w2v2.inference.export.check_inputs` does).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .configuration import Wav2Vec2Config
from .lengths import receptive_field


def tracing() -> bool:
    """True while ``torch.compile``/``torch.export`` (dynamo) or the TorchScript tracer runs the model."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _require(condition: bool | torch.SymBool, message: Callable[[], str], traced: str) -> None:
    """``ValueError(message())`` unless ``condition``; while tracing, an assertion kept in the graph
    whose message is the constant ``traced`` (dynamo cannot carry a message built from symbolic sizes)."""
    if torch.jit.is_tracing():  # sizes are traced tensors there, which torch._check refuses (OpenVINO's
        return  # converter traces the model so): the traced graph keeps no checks, like a value check
    if tracing():
        torch._check(condition, lambda: traced)
    elif not condition:
        raise ValueError(message())


def check_audio(
    input_values: torch.Tensor,
    config: Wav2Vec2Config,
    attention_mask: torch.Tensor | None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Validate raw audio ``(B, T)`` before the feature encoder; return it in ``dtype``.

    Floating-point audio of another precision (float64 from numpy, float16/bfloat16 from a
    half-precision pipeline) is cast to ``dtype``, the model's parameter dtype, so the first
    convolution does not fail on mixed dtypes; under autocast the cast is harmless (autocast
    picks the compute dtype itself).
    """
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
    _require(
        input_values.shape[1] >= field,
        lambda: (
            f"audio of {input_values.shape[1]} samples is shorter than the receptive field of the "
            f"feature encoder ({field} samples, {1000 * field / 16000:.0f} ms at 16 kHz)"
        ),
        "input_values is shorter than the receptive field of the feature encoder",
    )
    if not tracing() and not torch.isfinite(input_values).all():
        raise ValueError("input_values contains NaN or infinite samples")
    if attention_mask is not None:
        check_attention_mask(attention_mask, input_values, field)
    if dtype is not None and input_values.dtype != dtype:
        input_values = input_values.to(dtype)
    return input_values


def check_attention_mask(attention_mask: torch.Tensor, input_values: torch.Tensor, field: int) -> None:
    """Shape ``(B, T)`` like the audio, values 0/1 (or bool), every item at least ``field`` samples long."""
    if not isinstance(attention_mask, torch.Tensor):
        raise ValueError(f"attention_mask must be a torch.Tensor, got {type(attention_mask).__name__}")
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, samples), got {tuple(attention_mask.shape)}")
    for axis in (0, 1):
        _require(
            attention_mask.shape[axis] == input_values.shape[axis],
            lambda: (
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_values "
                f"shape {tuple(input_values.shape)}"
            ),
            "attention_mask and input_values differ in shape",
        )
    if tracing():
        return
    if attention_mask.dtype != torch.bool:
        bad = (attention_mask != 0) & (attention_mask != 1)
        if bad.any():
            value = attention_mask[bad][0].item()
            raise ValueError(
                f"attention_mask must hold only 0 (padding) and 1 (audio), found {value!r}; "
                "a mask of lengths or of weights is not an attention mask"
            )
    shortest = int(attention_mask.to(torch.long).sum(dim=-1).min())
    if shortest < field:
        raise ValueError(f"an item has {shortest} valid samples, fewer than the receptive field ({field} samples)")


def check_labels(
    labels: torch.Tensor, num_classes: int, name: str = "vocab_size", batch_size: int | None = None
) -> None:
    """Labels must be below the number of classes (negative entries are padding) and, when
    ``batch_size`` is given, have one row per input item."""
    if batch_size is not None:
        if labels.dim() == 0:
            raise ValueError(f"labels must have a batch axis ({batch_size} items), got a scalar")
        _require(
            labels.shape[0] == batch_size,
            lambda: f"labels have batch size {labels.shape[0]} but the input has {batch_size} items",
            "labels and input differ in batch size",
        )
    if not tracing() and labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"label value {int(labels.max())} is out of range: {name} is {num_classes}")
