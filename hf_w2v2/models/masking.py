"""Span masking for wav2vec 2.0 pre-training and SpecAugment-style fine-tuning.

Shape legend: B batch, F frames (or feature channels D when masking the feature
axis), S span starts.

Section 3.1 of the wav2vec 2.0 paper: "we randomly sample without replacement a
certain proportion p of all time steps to be starting indices and then mask the
subsequent M consecutive time steps". Spans may overlap, so ``mask_prob`` is an
upper bound on the masked fraction (about 49% of frames end up masked for the
paper's p = 0.065, M = 10).

:func:`compute_span_mask` follows the semantics of transformers'
``_compute_mask_indices`` (the oracle of ``tests/test_masking.py``) but runs as
vectorised torch on the target device, never masks padding, and never
synchronises with the host, so it works on CUDA without stalls and on the
``meta`` device.
"""

from __future__ import annotations

from typing import Any

import torch


def uniform(
    shape: tuple[int, ...],
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``U[0, 1)`` float32 samples of ``shape`` on ``device`` drawn from ``generator``.

    A generator on another device than ``device`` (e.g. a CPU generator for a CUDA
    batch) is honoured: the draw happens on the generator's device and is moved,
    so results are identical across devices for the same CPU generator. Pass a
    generator living on ``device`` to avoid the copy.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if generator is None or generator.device.type == device.type or device.type == "meta":
        if device.type == "meta":
            generator = None  # meta tensors carry no data; the generator is irrelevant
        return torch.rand(shape, device=device, generator=generator)
    return torch.rand(shape, device=generator.device, generator=generator).to(device)


def num_spans_per_row(
    lengths: torch.Tensor, sequence_length: int, mask_prob: float, mask_length: int, min_masks: int, u: torch.Tensor
) -> torch.Tensor:
    """Number of masked spans for each row, long ``(B,)``.

    ``int(mask_prob * length / mask_length + u)`` (probabilistic rounding with one
    ``u ~ U[0, 1)`` shared by the batch, as in transformers), raised to
    ``min_masks``, then capped so the spans fit the padded axis
    (``<= sequence_length // mask_length``) and the row
    (``<= length - mask_length + 1`` distinct starts).
    """
    num = torch.floor(mask_prob * lengths.to(torch.float32) / mask_length + u).to(torch.long)  # (B,)
    num = num.clamp(min=min_masks)
    num = torch.where(num * mask_length > sequence_length, sequence_length // mask_length, num)
    return torch.minimum(num, (lengths - (mask_length - 1)).clamp(min=0))


def _choose_without_replacement(
    valid: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Pick ``counts[b]`` distinct True positions of ``valid[b]`` uniformly at random.

    ``valid`` bool ``(B, F)``, ``counts`` long ``(B,)`` with ``counts <= valid.sum(1)``.
    Returns bool ``(B, F)``. Each position gets a random key; valid positions sort
    before invalid ones and the ``counts[b]`` smallest keys win (a uniformly random
    subset, because the order of i.i.d. keys is a uniform permutation).
    """
    keys = uniform(tuple(valid.shape), device=valid.device, generator=generator)  # (B, F)
    keys = torch.where(valid, keys, torch.full_like(keys, 2.0))
    order = keys.argsort(dim=1)  # (B, F) positions sorted by key
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(valid.shape[1], device=valid.device).expand_as(order)
    )
    return (rank < counts[:, None]) & valid  # (B, F)


def _spans_from_starts(starts: torch.Tensor, mask_length: int) -> torch.Tensor:
    """Bool ``(B, F)``: True where some start in ``[f - mask_length + 1, f]`` is set."""
    covered = starts.to(torch.int32).cumsum(dim=1)  # (B, F) starts at or before f
    shifted = torch.nn.functional.pad(covered, (mask_length, 0))[:, : starts.shape[1]]  # (B, F) starts before f-M+1
    return (covered - shifted) > 0


def equalize_mask_counts(mask: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop random masked frames so that every row keeps the batch minimum count.

    fairseq's ``require_same_masks``: after span masking, each row keeps
    ``min_b mask[b].sum()`` of its masked frames, chosen uniformly at random, so
    every utterance contributes the same number of contrastive targets. ``mask``
    bool ``(B, F)``; returns bool ``(B, F)``, a subset of ``mask``.
    """
    counts = mask.sum(dim=1)  # (B,)
    target = counts.min().expand_as(counts)  # (B,) stays on device, no host sync
    return _choose_without_replacement(mask, target, generator)


def compute_span_mask(
    shape: tuple[int, int],
    mask_prob: float,
    mask_length: int,
    *,
    min_masks: int = 0,
    lengths: torch.Tensor | None = None,
    equal_count: bool = False,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random span mask, bool ``(B, F)``, True on masked frames.

    Args:
        shape: ``(B, F)`` - batch size and padded length of the masked axis
            (frames for time masking, channels for feature masking).
        mask_prob: ``p`` of the paper: probability of each valid position to be a
            span start, so ``mask_prob * length / mask_length`` spans per row
            (transformers semantics; wav2vec 2.0 pre-training uses 0.65 with
            ``mask_length`` 10 - transformers divides by the span length where
            fairseq does not, so 0.65 here is fairseq's 0.065).
        mask_length: ``M``, frames per span.
        min_masks: minimum number of spans per row (still capped to fit the row).
        lengths: long ``(B,)`` valid positions per row (right padding); ``None``
            means every row is ``F`` long. Frames at or beyond ``lengths[b]`` are
            never masked.
        equal_count: fairseq's ``require_same_masks``: afterwards drop random
            masked frames so every row has the batch minimum number of masked
            frames (a row of length 0 therefore empties the whole mask).
        device: where the mask is created (default: ``lengths.device`` or CPU).
        generator: source of randomness; ``None`` uses torch's default generator.

    Rows too short for one span (``lengths[b] < mask_length``) get no mask.
    Raises ``ValueError`` if ``mask_length < 1``, ``mask_length > F`` (as
    transformers does), ``mask_prob`` is outside ``[0, 1]``, ``min_masks < 0``,
    or ``lengths`` has the wrong shape.
    """
    batch_size, sequence_length = shape
    if mask_length < 1:
        raise ValueError(f"mask_length must be >= 1, got {mask_length}")
    if mask_length > sequence_length:
        raise ValueError(
            f"mask_length ({mask_length}) must not exceed the masked axis length ({sequence_length}); "
            "use shorter spans or longer inputs"
        )
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    if min_masks < 0:
        raise ValueError(f"min_masks must be >= 0, got {min_masks}")
    if device is None:
        device = lengths.device if lengths is not None else torch.device("cpu")
    device = torch.device(device)
    if lengths is None:
        lengths = torch.full((batch_size,), sequence_length, dtype=torch.long, device=device)
    elif tuple(lengths.shape) != (batch_size,):
        raise ValueError(f"lengths must have shape ({batch_size},), got {tuple(lengths.shape)}")
    lengths = lengths.to(device=device, dtype=torch.long).clamp(0, sequence_length)

    u = uniform((1,), device=device, generator=generator)  # (1,) shared rounding offset
    num_spans = num_spans_per_row(lengths, sequence_length, mask_prob, mask_length, min_masks, u)  # (B,)
    positions = torch.arange(sequence_length, device=device)  # (F,)
    valid_starts = positions[None, :] <= (lengths - mask_length)[:, None]  # (B, F) span fits in the row
    starts = _choose_without_replacement(valid_starts, num_spans, generator)  # (B, F)
    mask = _spans_from_starts(starts, mask_length)  # (B, F)
    if equal_count:
        mask = equalize_mask_counts(mask, generator=generator)
    return mask


def time_mask(
    config: Any,
    shape: tuple[int, int],
    lengths: torch.Tensor | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The model's time mask ``(B, F)`` for ``config``: ``mask_time_prob``, ``mask_time_length``,
    ``mask_time_min_masks`` and ``mask_time_equal_count`` (fairseq's ``require_same_masks``). The one
    home of that choice: the model draws its training masks with it, pre-training evaluation its fixed ones."""
    return compute_span_mask(
        shape,
        config.mask_time_prob,
        config.mask_time_length,
        min_masks=config.mask_time_min_masks,
        lengths=lengths,
        equal_count=getattr(config, "mask_time_equal_count", False),
        device=device,
        generator=generator,
    )
