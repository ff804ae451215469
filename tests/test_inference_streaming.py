"""Streaming transcription: finals equal offline transcription, partials come early, sessions are independent."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hf_w2v2.data.audio import load_audio, resample
from hf_w2v2.decoding.formats import to_json
from hf_w2v2.inference.segments import Segmenter
from hf_w2v2.inference.streaming import StreamingTranscriber, StreamSettings
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import error_rates

SHIPPED = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
DEV = Path(__file__).parent / "fixtures" / "finetune" / "dev"
RATE = 16_000


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu")


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    with (DEV / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        return [load_audio(DEV / row["file_name"]) for row in csv.DictReader(handle)]


def stream(streamer: StreamingTranscriber, audio: np.ndarray, rate: int = RATE, seed: int = 0) -> list:
    """Feed ``audio`` in random pieces of 10-300 ms; all events, finish's included."""
    rng = np.random.default_rng(seed)
    session, events, at = streamer.session(rate), [], 0
    while at < audio.shape[0]:
        step = int(rng.integers(rate // 100, rate * 3 // 10))
        events += session.feed(audio[at : at + step])
        at += step
    return events + session.finish()


def finals(events: list) -> str:
    return " ".join(e.text for e in events if e.type == "final")


def test_streamed_finals_equal_offline_transcripts(transcriber, clips) -> None:
    """Offline transcription cut at the same pauses (what ``hf-w2v2 transcribe`` does) is the streamed
    transcript exactly, whatever the pieces the audio arrives in."""
    streamer = StreamingTranscriber(transcriber)
    segmenter = Segmenter(streamer.settings.segment_settings())
    offline = Transcriber(transcriber.model, transcriber.processor, device="cpu", segmenter=segmenter)
    for i, audio in enumerate(clips):
        events = stream(streamer, audio, seed=i)
        assert finals(events) == offline.transcribe_array(audio).text
        words = [w for e in events if e.type == "final" for w in e.words]
        assert words == list(offline.transcribe_array(audio).word_timings())


def test_pauses_cut_finals_and_partials_come_first(transcriber, clips) -> None:
    gap = np.zeros(RATE, dtype=np.float32)  # 1 s of silence
    audio = np.concatenate([clips[0], gap, clips[2]])
    events = stream(StreamingTranscriber(transcriber), audio)
    kinds = [e.type for e in events]
    assert kinds.count("final") == 2
    assert kinds.index("partial") < kinds.index("final")
    first, second = [e for e in events if e.type == "final"]
    assert first.end <= clips[0].shape[0] / RATE + 0.5 < second.start
    words = first.words + second.words
    assert all(0.0 <= w.confidence <= 1.0 and w.start <= w.end for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert words[-1].end <= audio.shape[0] / RATE
    # Partials lag the input by the look-ahead only: the first comes within a second of speech.
    partial = next(e for e in events if e.type == "partial")
    assert partial.end - partial.start <= 1.0


def test_sessions_are_independent_and_resample(transcriber, clips) -> None:
    streamer = StreamingTranscriber(transcriber, StreamSettings(partials=False))
    one, two = streamer.session(RATE), streamer.session(8_000)
    slow = resample(clips[1], RATE, 8_000)
    events_one, events_two = [], []
    for k in range(0, max(clips[0].shape[0], 2 * slow.shape[0]), 3_200):
        events_one += one.feed(clips[0][k : k + 3_200])
        events_two += two.feed(slow[k // 2 : k // 2 + 1_600])
    events_one += one.finish()
    events_two += two.finish()
    assert all(e.type == "final" for e in events_one + events_two)
    assert finals(events_one) == finals(stream(streamer, clips[0]))
    # The streaming resampler differs from resampling the whole file only at its edges.
    offline = Transcriber(transcriber.model, transcriber.processor, device="cpu", segmenter=Segmenter())
    expected = offline.transcribe_array(resample(slow, 8_000, RATE)).text
    assert error_rates([expected], [finals(events_two)])["cer"] <= 0.05
    assert one.transcript().text == finals(events_one)


def test_bad_input_is_refused(transcriber) -> None:
    streamer = StreamingTranscriber(transcriber)
    with pytest.raises(ValueError, match="sample_rate"):
        streamer.session(0)
    session = streamer.session(RATE)
    with pytest.raises(ValueError, match="mono"):
        session.feed(np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        session.feed(np.array([0.0, np.nan], dtype=np.float32))
    assert session.feed(np.zeros(RATE, dtype=np.float32)) == []  # silence: nothing to say
    assert session.finish() == []
    with pytest.raises(RuntimeError, match="finished"):
        session.feed(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="chunk_seconds"):
        StreamSettings(chunk_seconds=0)


def test_offline_json_has_word_confidences(transcriber, clips) -> None:
    record = json.loads(to_json(transcriber.transcribe_array(clips[0])))
    assert record["words"] and all(0.0 <= w["confidence"] <= 1.0 for w in record["words"])
    assert max(w["confidence"] for w in record["words"]) > 0.5
