"""Long-audio inference: window planning and stride merging."""

from __future__ import annotations

import pytest
import torch
from fixtures.decoding.tiny import make_model

from hf_w2v2.inference.chunked import chunked_logits, plan_chunks, seconds_to_samples
from hf_w2v2.models.lengths import conv_output_length

KERNELS, STRIDES = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
GEOMETRY = (KERNELS, STRIDES)


@pytest.mark.parametrize("num_samples", [400, 16_000, 16_001, 47_999, 48_123, 100_000, 160_320])
def test_kept_frames_tile_the_recording(num_samples: int) -> None:
    chunks = plan_chunks(num_samples, 16_000, 3_200, 3_200, *GEOMETRY)
    total = conv_output_length(num_samples, KERNELS, STRIDES)
    assert chunks[0].keep_from == 0 and chunks[-1].keep_to == total and chunks[-1].end == num_samples
    for before, after in zip(chunks, chunks[1:]):
        assert before.keep_to == after.keep_from  # contiguous, no frame twice
    for c in chunks:
        assert c.start % 320 == 0 and c.end - c.start <= 16_000
        local = conv_output_length(c.end - c.start, KERNELS, STRIDES)
        assert c.start // 320 <= c.keep_from <= c.keep_to <= c.start // 320 + local  # frames the window has


def test_plan_validation() -> None:
    with pytest.raises(ValueError, match="multiples of the hop"):
        plan_chunks(50_000, 16_000, 1_000, 3_200, *GEOMETRY)
    with pytest.raises(ValueError, match="longer than its two strides"):
        plan_chunks(50_000, 6_400, 3_200, 3_200, *GEOMETRY)
    with pytest.raises(ValueError, match="right stride"):
        plan_chunks(50_000, 16_000, 3_200, 0, *GEOMETRY)
    assert seconds_to_samples(1.0, 320, 16_000) == 16_000 and seconds_to_samples(0.33, 320, 16_000) == 5_120


def test_chunked_equals_unchunked_for_a_frame_local_model() -> None:
    """With a model whose frames only see nearby samples, stitching must be exact."""
    model = make_model(local=True)
    audio = torch.randn(3 * 16_000 + 123, generator=torch.Generator().manual_seed(0))
    whole = chunked_logits(model, audio, chunk=None)
    pieces = chunked_logits(model, audio, chunk=16_000, left=3_200, right=3_200, batch_size=2)
    assert (
        pieces.shape == whole.shape == (conv_output_length(audio.shape[0], KERNELS, STRIDES), model.config.vocab_size)
    )
    torch.testing.assert_close(pieces, whole, atol=1e-5, rtol=1e-5)


def test_short_audio_is_one_window_and_identical() -> None:
    model = make_model()
    audio = torch.randn(12_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        chunked_logits(model, audio, chunk=16_000, left=3_200, right=3_200), chunked_logits(model, audio, chunk=None)
    )


def test_attention_model_stays_close() -> None:
    """A model with attention sees less context per window; the argmax path barely moves."""
    model = make_model(seed=3)
    audio = torch.randn(4 * 16_000, generator=torch.Generator().manual_seed(2))
    whole = chunked_logits(model, audio, chunk=None)
    pieces = chunked_logits(model, audio, chunk=32_000, left=6_400, right=6_400)
    assert pieces.shape == whole.shape
    assert (pieces.argmax(-1) == whole.argmax(-1)).float().mean() > 0.9


def test_too_short_and_bad_shapes() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="too short: 0 samples"):
        chunked_logits(model, torch.zeros(0), chunk=16_000, left=3_200, right=3_200)
    with pytest.raises(ValueError, match="too short: 399 samples; the encoder needs at least 400"):
        chunked_logits(model, torch.zeros(399), chunk=None)
    with pytest.raises(ValueError, match=r"must be \(T,\)"):
        chunked_logits(model, torch.zeros(2, 1000), chunk=None)
