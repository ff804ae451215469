"""Batched transcription (issue 33): batches of similar lengths give batch 1's transcripts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hf_w2v2.data.audio import load_audio
from hf_w2v2.inference.batching import length_sorted_batches, pad_clips
from hf_w2v2.inference.transcribe import Transcriber

SHIPPED = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
FIXTURES = Path(__file__).parent / "fixtures"
# 8 synth-dev-like clips (1.8-3.4 s) and one 3 s recording: a batch of 8 and a batch of 1 at batch size 8
FILES = sorted(str(p) for p in (FIXTURES / "finetune" / "dev" / "audio").glob("*.flac")) + [
    str(FIXTURES / "audio" / "speech_16k.flac")
]


def test_pad_clips_right_pads_with_a_mask() -> None:
    audio, mask = pad_clips([np.ones(3, np.float32), np.full(5, 2.0, np.float32)])
    assert audio.dtype == np.float32 and mask.dtype == np.int64 and audio.shape == mask.shape == (2, 5)
    np.testing.assert_array_equal(audio, [[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert length_sorted_batches([3, 5, 4], 2) == [[1, 2], [0]]


@pytest.fixture(scope="module")
def one_by_one() -> tuple[Transcriber, list]:
    transcriber = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu")
    return transcriber, transcriber.transcribe_files(FILES, progress=False)


@pytest.mark.parametrize("batch_size", [3, 8])
def test_batches_give_the_transcripts_of_batch_1(one_by_one, batch_size: int) -> None:
    single, expected = one_by_one
    batched = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu", batch_size=batch_size)
    results = batched.transcribe_files(FILES, progress=False)  # the CLI's path: files read, batched, decoded
    assert [r.path for r in results] == FILES and all(r.error is None for r in results)
    assert sum(bool(r.transcription.text) for r in results) >= 7  # real speech, not empty strings
    for got, want in zip(results, expected):
        assert got.transcription.text == want.transcription.text
        assert got.transcription.words == want.transcription.words  # times and confidences too
    audio = [load_audio(f) for f in FILES]
    for one, many in zip(single.logits_batch(audio), batched.logits_batch(audio)):
        assert one.shape == many.shape
        torch.testing.assert_close(many, one, atol=1e-4, rtol=1e-4)


def test_dynamic_int8_runs_one_by_one_at_any_batch_size() -> None:
    """Dynamic int8 scales activations by the whole batch: batched, its transcripts would change."""
    audio = [load_audio(f) for f in FILES]
    single = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu", precision="int8")
    batched = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu", precision="int8", batch_size=8)
    assert batched._batches_change_results()
    for one, many in zip(single.logits_batch(audio), batched.logits_batch(audio)):
        torch.testing.assert_close(many, one, atol=0, rtol=0)
