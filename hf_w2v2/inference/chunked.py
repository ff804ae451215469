"""CTC logits of long recordings: overlapping windows merged at their strides.

Shape legend: B batch (chunks), T samples, F frames, V vocab.

A window (chunk) of ``chunk`` samples moves by ``chunk - left - right``; from each window
only the frames away from its edges are kept (``left`` samples of context are dropped at
the start, ``right`` at the end; the first window keeps its start and the last its end).
Windows start on a frame boundary (a multiple of the encoder hop ``hop_length(config.conv_stride)``,
320 samples for every released checkpoint), so frame ``j`` of a window starting at sample ``s``
is frame ``s / hop + j`` of the whole recording and the kept frames tile the recording's frames
exactly, each once. Memory is bounded by ``batch_size`` windows, whatever the recording's length;
only the ``(F, V)`` logits grow.

Transcription's model calls go through :func:`inference_logits`, which can put the input's length on
a grid (:func:`grid_length`, :func:`pad_to_grid`) for models whose output frames do not depend on padding;
``optimize``'s eager paths and classification pad with :func:`pad_to_grid` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hf_w2v2.models.lengths import conv_output_length, hop_length, receptive_field

GRID_FRACTION = 8  # a length on the grid is under 1/8 longer than the input (5% on average over 1-6 s)


@dataclass(frozen=True)
class Chunk:
    """A window ``[start, end)`` of samples and the recording frames ``[keep_from, keep_to)`` it supplies."""

    start: int
    end: int
    keep_from: int
    keep_to: int


def plan_chunks(
    num_samples: int,
    chunk: int,
    left: int,
    right: int,
    kernels: Sequence[int],
    strides: Sequence[int],
) -> list[Chunk]:
    """Windows covering ``num_samples`` samples; one window when the audio fits in ``chunk``.

    Args:
        num_samples: length of the recording.
        chunk: window length in samples; ``left`` and ``right``: context dropped at each
            side. All three must be multiples of the encoder hop (320 samples).
        kernels, strides: the conv feature encoder (``config.conv_kernel``, ``config.conv_stride``).

    Raises:
        ValueError: sizes not multiples of the hop, no room left to move, or a ``right``
            context shorter than the receptive field overhang.
    """
    hop = hop_length(strides)
    if any(x % hop for x in (chunk, left, right)) or min(left, right) < 0:
        raise ValueError(
            f"chunk ({chunk}), left ({left}) and right ({right}) must be multiples of the hop {hop} samples"
        )
    if chunk - left - right <= 0:
        raise ValueError(f"chunk ({chunk} samples) must be longer than its two strides ({left} + {right})")
    if conv_output_length(chunk, kernels, strides) < (chunk - right) // hop:
        raise ValueError(f"right stride {right} samples is shorter than the receptive field overhang; use >= {hop}")
    total = conv_output_length(num_samples, kernels, strides)
    if num_samples <= chunk:
        return [Chunk(0, num_samples, 0, total)]
    step = chunk - left - right
    chunks = []
    start = 0
    while True:
        end = min(start + chunk, num_samples)
        keep_from = 0 if start == 0 else (start + left) // hop
        keep_to = total if end == num_samples else (start + chunk - right) // hop
        chunks.append(Chunk(start, end, keep_from, max(keep_from, keep_to)))
        if end == num_samples:
            return chunks
        start += step


def seconds_to_samples(seconds: float, hop: int, sampling_rate: int) -> int:
    """``seconds`` rounded to a whole number of encoder hops, in samples."""
    return int(round(seconds * sampling_rate / hop)) * hop


@torch.inference_mode()
def chunked_logits(
    model: nn.Module,
    input_values: torch.Tensor,
    chunk: int | None,
    left: int = 0,
    right: int = 0,
    batch_size: int = 1,
    bf16: bool = False,
    grid: bool = False,
) -> torch.Tensor:
    """``(F, V)`` float32 CPU logits of one recording, computed window by window.

    Args:
        model: a CTC model (``forward(input_values) -> .logits (B, F, V)``) on its device.
        input_values: ``(T,)`` normalised samples (what the feature extractor returns).
        chunk, left, right: window and strides in samples (see :func:`plan_chunks`);
            ``chunk=None`` runs the whole recording at once.
        batch_size: full-length windows run together (the last, shorter one runs alone).
        bf16: run the model under bfloat16 autocast.
        grid: put a window shorter than ``chunk`` (a recording that fits one, or the last) on the
            length grid (:func:`inference_logits`); full windows all have one length already.

    Raises:
        ValueError: ``input_values`` is not 1-D or shorter than one frame's receptive field.
    """
    if input_values.dim() != 1:
        raise ValueError(f"input_values must be (T,) for one recording, got shape {tuple(input_values.shape)}")
    config: Any = model.config
    kernels, strides = config.conv_kernel, config.conv_stride
    needed = receptive_field(kernels, strides)
    num_samples = input_values.shape[0]
    if num_samples < needed:
        raise ValueError(
            f"audio is too short: {num_samples} samples; the encoder needs at least {needed} for one frame"
        )
    if chunk is None:
        chunks = [Chunk(0, num_samples, 0, conv_output_length(num_samples, kernels, strides))]
    else:
        chunks = plan_chunks(num_samples, chunk, left, right, kernels, strides)
    if len(chunks) == 1:  # the whole recording in one window: no copy in, none out
        return inference_logits(model, input_values[None], bf16=bf16, grid=grid)[0]
    hop = hop_length(strides)
    output = None
    for group in _batches(chunks, batch_size):
        windows = torch.stack([input_values[c.start : c.end] for c in group])  # (B, T)
        logits = inference_logits(model, windows, bf16=bf16, grid=grid and windows.shape[1] != chunk)
        if output is None:
            output = torch.empty(chunks[-1].keep_to, logits.shape[-1], dtype=torch.float32)  # (F, V)
        for c, row in zip(group, logits):
            offset = c.start // hop  # window frame j is recording frame offset + j
            output[c.keep_from : c.keep_to] = row[c.keep_from - offset : c.keep_to - offset]
    assert output is not None  # chunks is never empty
    return output


def inference_logits(
    model: nn.Module,
    audio: torch.Tensor,
    mask: torch.Tensor | None = None,
    bf16: bool = False,
    grid: bool = False,
) -> torch.Tensor:
    """``(B, F, V)`` float32 CPU logits of normalised ``(B, T)`` audio (``mask``: ``(B, T)``, 1 on samples),
    run on the model's device, under bf16 autocast when ``bf16``.

    ``grid``: run ``T`` right-padded to :func:`grid_length` (the mask marking the padding) and return
    the frames of ``T``. Only for models whose valid frames padding leaves unchanged (a frame-local
    feature encoder, ``FeatureEncoder.frame_local``): they agree with the unpadded call to float rounding.
    """
    device = next(model.parameters()).device

    def run(audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # No autograd: inference runs the faster no-grad paths (and int8 modules need them).
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(audio.to(device), attention_mask=None if mask is None else mask.to(device)).logits
        return logits.float().cpu()  # (B, F, V)

    return logits_on_grid(run, audio, mask, model.config) if grid else run(audio, mask)


def logits_on_grid(
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    audio: torch.Tensor,
    mask: torch.Tensor | None,
    config: Any,
) -> torch.Tensor:
    """``run(audio, mask) -> (B, F, V)`` logits with ``audio`` (and ``mask``) padded on to the length grid
    (:func:`pad_to_grid`), cut back to the frames of ``audio``'s own length (``config``: the model's)."""
    frames = conv_output_length(audio.shape[1], config.conv_kernel, config.conv_stride)
    return run(*pad_to_grid(audio, mask, hop_length(config.conv_stride)))[:, :frames]  # (B, F on the grid, V)


def pad_to_grid(audio: torch.Tensor, mask: torch.Tensor | None, hop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, T)`` audio and its ``(B, T)`` mask (``None``: every sample) right-padded to :func:`grid_length`,
    the mask marking the padding; returned as given when ``T`` is on the grid already."""
    length = audio.shape[1]
    padding = grid_length(length, hop) - length
    if not padding:
        return audio, mask
    mask = torch.ones(audio.shape, dtype=torch.long) if mask is None else mask
    return F.pad(audio, (0, padding)), F.pad(mask, (0, padding))  # (B, T) -> (B, T + padding)


def grid_length(samples: int, hop: int) -> int:
    """``samples`` rounded up to the length grid: to a multiple of the step ``hop x 2^k``, the largest
    not over ``samples / GRID_FRACTION`` (at least ``hop``). About 8 to 16 lengths per octave.

    Why a grid: oneDNN builds (JIT-compiles) its kernels for each input shape it meets and caches them,
    so a clip of a new length pays for building them in every layer. On a 2-core AMD EPYC Zen 5
    (AVX-512 bf16), transcribing the 150 synth-dev clips one at a time with the shipped small model
    spent about a quarter of its time there; on a grid of lengths, batch 1 ran 1.2-1.4x faster (bf16)
    and 1.14x (fp32), the padding included (issue 33, ``bench/bench_inference.py``).
    """
    step = hop
    while step * 2 * GRID_FRACTION <= samples:
        step *= 2
    # The step depends on the length's octave only, so a length on the grid stays where it is.
    return -(-samples // step) * step  # ceil to a multiple of step


def _batches(chunks: list[Chunk], batch_size: int) -> list[list[Chunk]]:
    """Consecutive windows of equal length, at most ``batch_size`` per group (no padding needed)."""
    groups: list[list[Chunk]] = []
    for c in chunks:
        if groups and len(groups[-1]) < batch_size and groups[-1][0].end - groups[-1][0].start == c.end - c.start:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups
