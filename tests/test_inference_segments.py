"""Segmentation at pauses: where the cuts go, chunk invariance, forced cuts, output formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_w2v2.inference.segments import Segmenter, SegmentSettings, render_segments

RATE = 16_000


def bursts(spans: list[tuple[float, float]], seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts (speech stand-ins, -20 dBFS) at ``spans`` seconds over -70 dBFS noise."""
    rng = np.random.default_rng(seed)
    audio = 3e-4 * rng.standard_normal(int(seconds * RATE))
    for start, end in spans:
        a, b = int(start * RATE), int(end * RATE)
        audio[a:b] += 0.1 * rng.standard_normal(b - a)
    return audio.astype(np.float32)


def seconds(segments) -> list[tuple[float, float]]:
    return [(round(s.start_s, 2), round(s.end_s, 2)) for s in segments]


def test_cuts_at_pauses_with_margins() -> None:
    audio = bursts([(1.5, 2.5), (2.6, 3.0), (4.0, 4.5), (6.5, 6.52)], 7.5)
    got = seconds(Segmenter(SegmentSettings(pause_seconds=0.3, margin_seconds=0.5)).segments(audio))
    # The 0.1 s gap does not cut; the 1 s pause does (the first keeps 0.3 s of it, the second
    # reaches back 0.5 s); the 20 ms click is dropped as too short.
    assert got == [(1.0, 3.3), (3.5, 4.8)]
    # Speech within the first second keeps the recording's start.
    assert seconds(Segmenter().segments(bursts([(0.8, 1.5)], 2.0)))[0][0] == 0.0


def test_chunked_pushes_give_the_same_segments() -> None:
    audio = bursts([(0.2, 1.1), (1.6, 3.0), (3.4, 3.9)], 4.5, seed=1)
    segmenter = Segmenter()
    whole = segmenter.segments(audio)
    rng = np.random.default_rng(0)
    stream, pieces, at = segmenter.stream(), [], 0
    while at < audio.shape[0]:
        step = int(rng.integers(1, 5_000))
        pieces += stream.push(audio[at : at + step])
        at += step
    assert pieces + stream.finish() == whole
    assert len(whole) == 3


def test_long_speech_is_cut_at_its_quietest_point() -> None:
    audio = bursts([(0.0, 2.6), (2.65, 6.0)], 6.0)  # a 50 ms dip at 2.6 s, shorter than a pause
    segments = Segmenter(SegmentSettings(max_segment_seconds=3.0)).segments(audio)
    assert len(segments) == 3 and 2.6 <= segments[0].end_s <= 2.66
    assert all(s.end_s - s.start_s <= 3.0 for s in segments)
    assert segments[-1].end == audio.shape[0]


def test_silence_and_bad_settings() -> None:
    assert Segmenter().segments(np.zeros(RATE, dtype=np.float32)) == []
    with pytest.raises(ValueError, match="pause_seconds"):
        SegmentSettings(pause_seconds=0)
    with pytest.raises(ValueError, match="max_segment_seconds"):
        SegmentSettings(max_segment_seconds=1.0)


def test_formats() -> None:
    segments = Segmenter().segments(bursts([(0.5, 1.0), (2.0, 2.5)], 3.0))
    record = json.loads(render_segments(segments, "json", "dir/a.wav", 3.0))
    assert [(s["start"], s["end"]) for s in record["segments"]] == seconds(segments)
    rttm = render_segments(segments, "rttm", "dir/a.wav", 3.0).splitlines()
    assert rttm[0].split()[:5] == [
        "SPEAKER",
        "a",
        "1",
        f"{segments[0].start_s:.3f}",
        f"{segments[0].end_s - segments[0].start_s:.3f}",
    ]
    grid = render_segments(segments, "textgrid", "dir/a.wav", 3.0)
    assert 'name = "speech"' in grid and grid.count('text = "speech"') == len(segments) == 2
    with pytest.raises(ValueError, match="rttm"):
        render_segments(segments, "csv", "a.wav", 3.0)
