"""Frame arithmetic of the convolutional feature encoder.

Shape legend: B batch, T samples, F frames.

The encoder is a stack of 1-D convolutions without padding, so each layer maps a
length ``L`` to ``floor((L - kernel) / stride) + 1``. For the wav2vec 2.0 stack
(kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2) that is one frame per 320 samples
(20 ms at 16 kHz) with a receptive field of 400 samples (25 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import torch


@overload
def conv_output_length(input_lengths: int, kernels: Sequence[int], strides: Sequence[int]) -> int: ...
@overload
def conv_output_length(input_lengths: torch.Tensor, kernels: Sequence[int], strides: Sequence[int]) -> torch.Tensor: ...
def conv_output_length(
    input_lengths: torch.Tensor | int, kernels: Sequence[int], strides: Sequence[int]
) -> torch.Tensor | int:
    """Number of output frames of a stack of unpadded convolutions.

    Works on Python ints and on integer tensors of any shape. Lengths shorter than
    the receptive field give a value ``<= 0``; callers that need a valid frame
    count check against :func:`receptive_field`.
    """
    lengths = input_lengths
    for kernel, stride in zip(kernels, strides):
        if isinstance(lengths, torch.Tensor):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        else:
            lengths = (lengths - kernel) // stride + 1
    return lengths


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Samples seen by one output frame (400 for the wav2vec 2.0 encoder)."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def hop_length(strides: Sequence[int]) -> int:
    """Samples between two output frames: the product of the strides (320 for the wav2vec 2.0 encoder)."""
    hop = 1
    for stride in strides:
        hop *= stride
    return hop


def lengths_to_padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean mask ``(B, max_length)``, True on valid (non-padded) positions."""
    positions = torch.arange(max_length, device=lengths.device)  # (max_length,)
    return positions[None, :] < lengths[:, None]  # (B, max_length)


def attention_mask_to_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Valid samples per row of a 0/1 (or bool) sample-level attention mask ``(B, T)``."""
    return attention_mask.to(torch.long).sum(dim=-1)
