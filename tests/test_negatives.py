"""Property tests of hf_w2v2.models.negatives.sample_negative_indices."""

from __future__ import annotations

import pytest
import torch

from hf_w2v2.models.masking import compute_span_mask
from hf_w2v2.models.negatives import sample_negative_indices

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def padded_mask(seed: int, lengths: list[int], num_frames: int = 200) -> torch.Tensor:
    return compute_span_mask((len(lengths), num_frames), 0.65, 10, lengths=torch.tensor(lengths), generator=gen(seed))


def test_shape_dtype_and_flat_offsets():
    mask = padded_mask(0, [200, 150, 90])
    negatives = sample_negative_indices(mask, 7, generator=gen(1))
    assert negatives.shape == (3, 200, 7) and negatives.dtype == torch.long
    rows = negatives.div(200, rounding_mode="floor")
    assert torch.equal(rows, torch.arange(3)[:, None, None].expand_as(rows))


def test_distractors_are_other_masked_frames_of_the_same_row():
    for seed in range(20):
        mask = padded_mask(seed, [200, 170, 64, 33])
        negatives = sample_negative_indices(mask, 10, generator=gen(seed))
        batch_size, num_frames = mask.shape
        flat_mask = mask.reshape(-1)  # (B, F) -> (B x F)
        own = torch.arange(batch_size * num_frames).view(batch_size, num_frames, 1)  # (B, F, 1)
        enough = mask.sum(1) >= 2
        selected = mask & enough[:, None]  # masked frames that have distractors
        chosen = negatives[selected]  # (N, K)
        assert flat_mask[chosen].all()  # never unmasked, never padding
        assert (chosen != own.expand_as(negatives)[selected]).all()  # never the positive itself


def test_row_never_draws_from_its_neighbour():
    # Row b's frames carry the value b; gathering the distractors with the
    # transformers recipe must give back b only, for every layout of masks.
    batch_size, num_frames = 6, 120
    quantized = torch.arange(batch_size, dtype=torch.float32)[:, None, None].expand(batch_size, num_frames, 4)
    for seed in range(30):
        lengths = torch.randint(10, num_frames + 1, (batch_size,), generator=gen(seed))
        mask = compute_span_mask((batch_size, num_frames), 0.65, 10, lengths=lengths, generator=gen(seed))
        negatives = sample_negative_indices(mask, 20, generator=gen(seed + 100))
        gathered = quantized.reshape(-1, 4)[negatives.view(-1)]  # (B x F x K, D)
        gathered = gathered.view(batch_size, num_frames, 20, 4)  # (B x F x K, D) -> (B, F, K, D)
        rows = torch.arange(batch_size, dtype=torch.float32)[:, None, None, None]
        assert torch.equal(gathered, rows.expand_as(gathered))


def test_rows_with_fewer_than_two_masked_frames_and_unmasked_frames_point_at_themselves():
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 5] = True  # a single masked frame: no other candidate
    mask[2, 3:9] = True
    negatives = sample_negative_indices(mask, 4, generator=gen(0))
    own = torch.arange(3 * 12).view(3, 12, 1).expand_as(negatives)  # (B, F, K)
    assert torch.equal(negatives[0], own[0])
    assert torch.equal(negatives[1], own[1])
    assert torch.equal(negatives[2][~mask[2]], own[2][~mask[2]])
    assert not (negatives[2][mask[2]] == own[2][mask[2]]).any()


def test_two_masked_frames_draw_each_other():
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, [2, 7]] = True
    negatives = sample_negative_indices(mask, 5, generator=gen(0))
    assert (negatives[0, 2] == 7).all() and (negatives[0, 7] == 2).all()


def test_uniform_over_the_other_masked_frames():
    mask = torch.zeros(1, 40, dtype=torch.bool)
    masked = [1, 2, 3, 10, 11, 30, 31, 39]
    mask[0, masked] = True
    negatives = sample_negative_indices(mask, 16000, generator=gen(0))
    counts = torch.bincount(negatives[0, 10], minlength=40).float()
    others = [f for f in masked if f != 10]
    assert counts[10] == 0 and counts.sum() == 16000
    expected = 16000 / len(others)
    assert ((counts[others] - expected).abs() < 0.06 * expected).all()


def test_deterministic_for_a_seed_and_seeds_differ():
    mask = padded_mask(0, [200, 120])
    first = sample_negative_indices(mask, 10, generator=gen(3))
    assert torch.equal(first, sample_negative_indices(mask, 10, generator=gen(3)))
    assert not torch.equal(first, sample_negative_indices(mask, 10, generator=gen(4)))


def test_clear_errors():
    with pytest.raises(ValueError, match="num_negatives"):
        sample_negative_indices(torch.ones(2, 5, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match="batch, frames"):
        sample_negative_indices(torch.ones(5, dtype=torch.bool), 3)


def test_meta_device():
    mask = torch.zeros(2, 50, dtype=torch.bool, device="meta")
    negatives = sample_negative_indices(mask, 8)
    assert negatives.device.type == "meta" and negatives.shape == (2, 50, 8) and negatives.dtype == torch.long


def test_indices_drive_stock_transformers_pretraining_loss():
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        codevector_dim=16,
        proj_codevector_dim=16,
        num_codevectors_per_group=8,
        num_negatives=5,
        mask_time_length=4,
    )
    model = Wav2Vec2ForPreTraining(config).eval()
    input_values = torch.randn(2, 1600, generator=gen(0))
    num_frames = int(model._get_feat_extract_output_lengths(1600))
    mask = compute_span_mask((2, num_frames), 0.65, 4, min_masks=2, generator=gen(1))
    negatives = sample_negative_indices(mask, 5, generator=gen(2))
    with torch.no_grad():
        out = model(input_values, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert torch.isfinite(out.loss) and out.contrastive_loss > 0


@needs_cuda
def test_cuda_matches_cpu_for_a_cpu_generator():
    mask = padded_mask(0, [200, 150, 90])
    cpu = sample_negative_indices(mask, 10, generator=gen(9))
    cuda = sample_negative_indices(mask.cuda(), 10, generator=gen(9))
    assert cuda.device.type == "cuda" and torch.equal(cpu, cuda.cpu())


@needs_cuda
def test_cuda_generator_without_host_sync():
    mask = padded_mask(0, [200, 150, 90]).cuda()
    torch.cuda.set_sync_debug_mode("error")
    try:
        negatives = sample_negative_indices(mask, 10, generator=gen(9, "cuda"))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    rows = negatives.div(200, rounding_mode="floor")
    assert torch.equal(rows, torch.arange(3, device="cuda")[:, None, None].expand_as(rows))
