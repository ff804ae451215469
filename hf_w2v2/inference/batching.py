"""Several recordings through the model at once: sorted by length, right-padded, masked.

Shape legend: B batch, T samples, F frames, V vocabulary.

Sorting first keeps padding small: neighbours in length order differ little, so a batch of 8
wastes few padded frames. The attention mask removes the padding from attention and from
the frame counts; the result matches one-by-one logits to float tolerance for models whose
feature encoder normalises per frame (layer norm, ``FeatureEncoder.frame_local``). Group-norm
encoders normalise over time, so padding would change their output: callers run those alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from hf_w2v2.inference.chunked import inference_logits
from hf_w2v2.models.lengths import receptive_field


def check_length(audio: np.ndarray, config: object) -> None:
    """ValueError for a recording that is empty, not (T,), or shorter than one frame's receptive field."""
    audio = np.asarray(audio)
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise ValueError(f"audio must be a non-empty (T,) array, got shape {audio.shape}")
    needed = receptive_field(config.conv_kernel, config.conv_stride)  # type: ignore[attr-defined]
    if audio.shape[0] < needed:
        raise ValueError(
            f"audio is too short: {audio.shape[0]} samples; the encoder needs at least {needed} for one frame"
        )


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped ``batch_size`` at a time in order of decreasing length."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_clips(clips: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad ``(T_i,)`` clips into float32 audio ``(B, T)`` and an int64 mask ``(B, T)``, 1 on samples.

    Built with numpy, on one thread: torch's fills and copies of this size would wake its thread pool
    between two model calls, and on a busy machine wait milliseconds for it (issue 33 measured a
    seventh of batch-8 transcription in the padding and mask sums around an onnxruntime model).
    """
    longest = max(len(c) for c in clips)
    audio = np.zeros((len(clips), longest), dtype=np.float32)
    mask = np.zeros((len(clips), longest), dtype=np.int64)
    for row, clip in enumerate(clips):
        audio[row, : len(clip)] = clip
        mask[row, : len(clip)] = 1
    return audio, mask


def batched_logits(
    model: nn.Module, clips: Sequence[np.ndarray], batch_size: int, bf16: bool = False, grid: bool = False
) -> list[torch.Tensor]:
    """``(F_i, V)`` float32 CPU logits of each normalised ``(T_i,)`` clip, in the order given.

    Each is a view of its batch's ``(B, F, V)`` logits (the padded frames cut off). ``grid``: each batch
    padded on to the length grid (:func:`~hf_w2v2.inference.chunked.inference_logits`).
    """
    lengths = [len(c) for c in clips]
    out: list[torch.Tensor | None] = [None] * len(clips)
    for batch in length_sorted_batches(lengths, batch_size):
        members = [np.asarray(clips[i], dtype=np.float32) for i in batch]
        if len(batch) == 1:  # no padding: the exact unbatched call
            audio, mask = torch.from_numpy(members[0][None]), None
        else:
            padded, ones = pad_clips(members)
            audio, mask = torch.from_numpy(padded), torch.from_numpy(ones)
        logits = inference_logits(model, audio, mask, bf16, grid)  # (B, F, V)
        frames = model._get_feat_extract_output_lengths(torch.tensor([lengths[i] for i in batch])).tolist()  # type: ignore[operator]
        for row, i in enumerate(batch):
            out[i] = logits[row, : frames[row]]  # (F_i, V)
    return out  # type: ignore[return-value]
