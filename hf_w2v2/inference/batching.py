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


def batched_logits(
    model: nn.Module, clips: Sequence[np.ndarray], batch_size: int, bf16: bool = False
) -> list[torch.Tensor]:
    """``(F_i, V)`` float32 CPU logits of each normalised ``(T_i,)`` clip, in the order given."""
    device = next(model.parameters()).device
    out: list[torch.Tensor | None] = [None] * len(clips)
    for batch in length_sorted_batches([len(c) for c in clips], batch_size):
        longest = len(clips[batch[0]])
        audio = torch.zeros(len(batch), longest)  # (B, T)
        mask = torch.zeros(len(batch), longest, dtype=torch.long)  # (B, T)
        for row, i in enumerate(batch):
            audio[row, : len(clips[i])] = torch.from_numpy(np.asarray(clips[i], dtype=np.float32))
            mask[row, : len(clips[i])] = 1
        masked = mask if len(batch) > 1 else None  # one clip: no padding, the exact unbatched call
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(audio.to(device), attention_mask=None if masked is None else masked.to(device)).logits
        frames = model.frame_lengths(mask).tolist()  # type: ignore[operator]
        for row, i in enumerate(batch):
            out[i] = logits[row, : frames[row]].float().cpu()  # (F_i, V)
    return out  # type: ignore[return-value]
