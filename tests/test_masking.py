"""Property tests of hf_w2v2.models.masking.compute_span_mask (oracle: transformers' _compute_mask_indices)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

from hf_w2v2.models.masking import compute_span_mask, num_spans_per_row

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def run_lengths(row: torch.Tensor) -> list[int]:
    """Lengths of the maximal runs of True in a 1-D bool tensor."""
    runs, current = [], 0
    for value in row.tolist() + [False]:
        if value:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_shape_dtype_device():
    mask = compute_span_mask((3, 120), 0.65, 10, generator=gen(0))
    assert mask.shape == (3, 120) and mask.dtype == torch.bool and mask.device.type == "cpu"
    assert mask.any()


def test_never_inside_padding_and_short_rows_unmasked():
    lengths = torch.tensor([120, 57, 10, 9, 0])
    for seed in range(50):
        mask = compute_span_mask((5, 120), 0.65, 10, min_masks=2, lengths=lengths, generator=gen(seed))
        positions = torch.arange(120)[None, :]
        assert not (mask & (positions >= lengths[:, None])).any()
        assert mask[3:].sum() == 0  # rows shorter than one span get no mask
        assert mask[2].sum() == 10  # exactly one span fits a row of length mask_length


def test_runs_are_at_least_one_span_and_counts_bounded():
    lengths = torch.tensor([200, 150, 80, 33])
    for seed in range(30):
        g = gen(seed)
        mask = compute_span_mask((4, 200), 0.65, 10, lengths=lengths, generator=g)
        u = torch.rand(1, generator=gen(seed))  # the first draw of compute_span_mask
        spans = num_spans_per_row(lengths, 200, 0.65, 10, 0, u)
        for b in range(4):
            assert all(run >= 10 for run in run_lengths(mask[b]))
            count = int(mask[b].sum())
            assert count <= int(spans[b]) * 10
            assert (count >= 10) == (int(spans[b]) >= 1)


def test_num_spans_follows_transformers_formula():
    lengths = torch.tensor([100, 50, 25, 5])
    spans = num_spans_per_row(lengths, 100, 0.65, 10, 0, torch.tensor([0.5]))
    # int(0.65 * L / 10 + 0.5), capped at L - 9 starts
    assert spans.tolist() == [7, 3, 2, 0]
    spans = num_spans_per_row(lengths, 100, 0.0, 10, 3, torch.tensor([0.0]))
    assert spans.tolist() == [3, 3, 3, 0]  # min_masks, capped so spans fit (25 - 9 = 16 >= 3)
    spans = num_spans_per_row(torch.tensor([30]), 30, 1.0, 10, 0, torch.tensor([0.9]))
    assert spans.tolist() == [3]  # never more spans than sequence_length // mask_length


def test_min_masks_applies_when_mask_prob_zero():
    mask = compute_span_mask((8, 100), 0.0, 5, min_masks=2, generator=gen(3))
    counts = mask.sum(dim=1)
    assert ((counts >= 5) & (counts <= 10)).all()
    assert not compute_span_mask((8, 100), 0.0, 5, generator=gen(3)).any()


def test_deterministic_for_a_seed_and_seeds_differ():
    first = compute_span_mask((4, 300), 0.65, 10, generator=gen(7))
    again = compute_span_mask((4, 300), 0.65, 10, generator=gen(7))
    other = compute_span_mask((4, 300), 0.65, 10, generator=gen(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_equal_count_keeps_batch_minimum_subset():
    lengths = torch.tensor([300, 220, 140, 300])
    for seed in range(20):
        plain = compute_span_mask((4, 300), 0.65, 10, lengths=lengths, generator=gen(seed))
        equal = compute_span_mask((4, 300), 0.65, 10, lengths=lengths, equal_count=True, generator=gen(seed))
        counts = equal.sum(dim=1)
        assert (counts == plain.sum(dim=1).min()).all()
        assert not (equal & ~plain).any()  # only drops frames, never adds


def test_feature_axis_masking():
    mask = compute_span_mask((6, 64), 0.5, 8, generator=gen(1))
    assert mask.shape == (6, 64)
    assert all(run >= 8 for b in range(6) for run in run_lengths(mask[b]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mask_length=0), "mask_length must be >= 1"),
        (dict(mask_length=11), "must not exceed"),
        (dict(mask_prob=1.5), "mask_prob"),
        (dict(min_masks=-1), "min_masks"),
        (dict(lengths=torch.tensor([10, 10, 10])), "lengths must have shape"),
    ],
)
def test_clear_errors(kwargs, message):
    args = dict(mask_prob=0.5, mask_length=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_span_mask((2, 10), **args)


def test_meta_device_gives_shape_without_data():
    mask = compute_span_mask((2, 500), 0.65, 10, lengths=torch.tensor([500, 300], device="meta"), device="meta")
    assert mask.device.type == "meta" and mask.shape == (2, 500) and mask.dtype == torch.bool


def test_equal_count_runs_on_meta():
    mask = compute_span_mask((3, 50), 0.65, 10, equal_count=True, device="meta")
    assert mask.device.type == "meta" and mask.shape == (3, 50)


@pytest.mark.parametrize(
    "shape, mask_prob, mask_length, lengths",
    [
        ((4, 250), 0.65, 10, None),
        ((4, 250), 0.65, 10, [250, 180, 90, 40]),
        ((4, 80), 0.05, 2, None),  # SpecAugment-style time masking of fine-tuning
        ((4, 64), 0.3, 8, None),  # feature-axis masking
    ],
)
def test_masked_fraction_agrees_with_transformers(shape, mask_prob, mask_length, lengths):
    draws = 400
    np.random.seed(0)
    attention = None
    valid = torch.ones(shape, dtype=torch.bool)
    if lengths is not None:
        valid = torch.arange(shape[1])[None, :] < torch.tensor(lengths)[:, None]
        attention = valid.long()
    ours = torch.zeros(shape)
    theirs = torch.zeros(shape)
    g = gen(0)
    length_tensor = None if lengths is None else torch.tensor(lengths)
    for _ in range(draws):
        ours += compute_span_mask(shape, mask_prob, mask_length, lengths=length_tensor, generator=g).float()
        theirs += torch.from_numpy(_compute_mask_indices(shape, mask_prob, mask_length, attention)).float()
    ours, theirs = ours / draws, theirs / draws
    # Whole-batch masked fraction of the valid frames, and per-row fractions.
    assert abs(ours[valid].mean() - theirs[valid].mean()) < 0.01
    row_ours = (ours * valid).sum(1) / valid.sum(1)
    row_theirs = (theirs * valid).sum(1) / valid.sum(1)
    assert torch.allclose(row_ours, row_theirs, atol=0.02)
    # Position profile (edges are masked less often than the middle), in bins of one span.
    bins = shape[1] // mask_length
    rows = valid.sum(0).clamp(min=1)  # (F,) rows that reach each position
    profile_ours = ((ours * valid).sum(0) / rows)[: bins * mask_length].reshape(bins, mask_length).mean(-1)
    profile_theirs = ((theirs * valid).sum(0) / rows)[: bins * mask_length].reshape(bins, mask_length).mean(-1)
    assert (profile_ours - profile_theirs).abs().max() < 0.08


@needs_cuda
def test_cuda_matches_cpu_for_a_cpu_generator_and_stays_on_device():
    lengths = torch.tensor([300, 200, 120])
    cpu = compute_span_mask((3, 300), 0.65, 10, lengths=lengths, generator=gen(5))
    cuda = compute_span_mask((3, 300), 0.65, 10, lengths=lengths.cuda(), generator=gen(5))
    assert cuda.device.type == "cuda"
    assert torch.equal(cpu, cuda.cpu())


@needs_cuda
def test_cuda_generator_without_host_sync():
    lengths = torch.tensor([300, 200, 120], device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        mask = compute_span_mask((3, 300), 0.65, 10, lengths=lengths, equal_count=True, generator=gen(5, "cuda"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert mask.device.type == "cuda"
    assert not (mask & (torch.arange(300, device="cuda")[None, :] >= lengths[:, None])).any()
