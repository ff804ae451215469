"""hf_w2v2.models.losses.contrastive_logits against a brute-force reference, and the frames-major conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_w2v2.models.feature_encoder import conv_as_matmul
from hf_w2v2.models.losses import contrastive_logits
from hf_w2v2.models.masking import compute_span_mask
from hf_w2v2.models.negatives import sample_negative_indices


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brute_force(context: torch.Tensor, targets: torch.Tensor, indices: torch.Tensor, kappa: float) -> torch.Tensor:
    """Gather every candidate vector and take cosines: (K + 1, B, F)."""
    b, f, p = targets.shape
    negatives = targets.reshape(b * f, p)[indices.reshape(-1)].view(b, f, -1, p).permute(2, 0, 1, 3)  # (K, B, F, P)
    candidates = torch.cat([targets[None], negatives])  # (K + 1, B, F, P)
    logits = F.cosine_similarity(context.double(), candidates.double(), dim=-1) / kappa
    same = (negatives == targets[None]).all(-1)  # (K, B, F)
    return logits.masked_fill(torch.cat([torch.zeros_like(same[:1]), same]), float("-inf"))


def batch(seed: int, b: int = 3, f: int = 40, p: int = 16, k: int = 6):
    g = gen(seed)
    context, targets = torch.randn(b, f, p, generator=g), torch.randn(b, f, p, generator=g)
    mask = compute_span_mask((b, f), 0.65, 4, lengths=torch.tensor([f, f - 7, f - 20][:b]), generator=g)
    return context, targets, mask, sample_negative_indices(mask, k, generator=g)


def test_matches_brute_force_at_every_frame():
    for seed in range(5):
        context, targets, mask, indices = batch(seed)
        ours = contrastive_logits(context, targets, indices, 0.1, mask)
        ref = brute_force(context, targets, indices, 0.1)
        assert ours.shape == ref.shape == (7, 3, 40) and ours.dtype == torch.float32
        finite = torch.isfinite(ref)
        assert torch.equal(finite, torch.isfinite(ours))
        assert torch.allclose(ours[finite].double(), ref[finite], atol=1e-5)


def test_distractor_equal_to_the_positive_is_not_counted():
    context, targets, mask, indices = batch(0)
    frame = int(mask[0].nonzero()[0])
    other = int(indices[0, frame, 0])  # its first distractor's flat index, in row 0
    targets[0, other] = targets[0, frame]  # same codeword -> identical target vectors
    logits = contrastive_logits(context, targets, indices, 0.1, mask)
    assert logits[1, 0, frame] == float("-inf")
    assert torch.isfinite(logits[0]).all()  # the positive itself is never masked
    ref = brute_force(context, targets, indices, 0.1)
    assert torch.equal(torch.isinf(ref), torch.isinf(logits))


def test_cross_utterance_distractors_are_refused_where_used():
    context, targets, mask, indices = batch(1)
    f = targets.shape[1]
    unmasked = int((~mask[1]).nonzero()[0])
    elsewhere = indices.clone()
    elsewhere[1, unmasked, :] = 0  # row 0's frame, at an unmasked frame of row 1: ignored
    contrastive_logits(context, targets, elsewhere, 0.1, mask)
    masked = int(mask[1].nonzero()[0])
    elsewhere[1, masked, 0] = 2 * f  # row 2's frame as a distractor of a masked frame of row 1
    with pytest.raises(ValueError, match="same utterance"):
        contrastive_logits(context, targets, elsewhere, 0.1, mask)


def test_float32_under_bf16_autocast_and_gradients_flow():
    context, targets, mask, indices = batch(2)
    context.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = contrastive_logits(context, targets, indices, 0.1, mask)
    assert logits.dtype == torch.float32
    ref = brute_force(context.detach(), targets, indices, 0.1)
    finite = torch.isfinite(ref)
    assert torch.allclose(logits.detach()[finite].double(), ref[finite], atol=1e-4)
    logits[0][mask].sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0


@pytest.mark.parametrize("c_in,kernel,stride", [(1, 10, 5), (8, 3, 2), (8, 2, 2), (5, 4, 3)])
def test_conv_as_matmul_is_conv1d(c_in: int, kernel: int, stride: int):
    torch.manual_seed(0)
    conv = nn.Conv1d(c_in, 6, kernel, stride)
    x = torch.randn(2, c_in, 101, requires_grad=True)  # (B, C_in, T)
    frames_major = x.detach().transpose(1, 2).contiguous().requires_grad_(True)  # (B, T, C_in)
    ref = conv(x)  # (B, C_out, F)
    ours = conv_as_matmul(frames_major, conv)  # (B, F, C_out)
    assert ours.shape == (2, ref.shape[2], 6)
    assert torch.allclose(ours.transpose(1, 2), ref, atol=1e-5)
    grad = torch.randn_like(ref)
    ref.backward(grad)
    weight_grad = conv.weight.grad.clone()
    conv.weight.grad = None
    ours.backward(grad.transpose(1, 2))
    assert torch.allclose(frames_major.grad.transpose(1, 2), x.grad, atol=1e-5)
    assert torch.allclose(conv.weight.grad, weight_grad, atol=1e-4)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_feature_encoder_kernels_give_the_same_features_and_gradients(norm: str):
    """The CPU matmul kernel and nn.Conv1d (the kernel elsewhere) compute the same encoder."""
    from hf_w2v2 import Wav2Vec2Config
    from hf_w2v2.models.feature_encoder import FeatureEncoder

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 3, 2),
        conv_stride=(5, 2, 2),
        feat_extract_norm=norm,
        conv_bias=norm == "layer",
    )
    encoder = FeatureEncoder(config)
    audio = torch.randn(2, 1600)
    outputs, grads = {}, {}
    for kernel in ("matmul", "conv1d"):
        encoder.zero_grad(set_to_none=True)
        outputs[kernel] = encoder(audio, kernel=kernel)  # (B, C, F)
        outputs[kernel].pow(2).mean().backward()
        grads[kernel] = torch.cat([p.grad.flatten() for p in encoder.parameters()])
    assert outputs["matmul"].shape == (2, 16, encoder.output_frames(1600))
    torch.testing.assert_close(outputs["matmul"], outputs["conv1d"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads["matmul"], grads["conv1d"], rtol=1e-4, atol=1e-5)
    assert not torch.equal(outputs["matmul"], torch.zeros_like(outputs["matmul"]))
