"""A voice-activity corpus with exact labels: short recordings placed at known offsets in silence or noise.

Shape legend: T samples.

Each clip is ``seconds`` long at 16 kHz: 0-2 source recordings (e.g. FSDD digits, trimmed of
their leading/trailing near-silence) are put at random, non-overlapping offsets on a background
of digital silence, low white noise or low brown noise, at a random gain. The speech segments are
written to ``metadata.csv`` (column ``segments``: ``START-END;...`` in seconds), which
``--task frame`` reads as frame labels.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio

TRIM_DB = -35.0  # samples quieter than this relative to the clip's peak are trimmed at both ends


def trim(audio: np.ndarray, threshold_db: float = TRIM_DB) -> np.ndarray:
    """``audio`` without its leading and trailing samples below ``threshold_db`` of its peak."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak == 0.0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) >= peak * 10 ** (threshold_db / 20))
    return audio[loud[0] : loud[-1] + 1]


def background(kind: str, num_samples: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """``silence``, ``white`` or ``brown`` noise of RMS ``level``."""
    if kind == "silence":
        return np.zeros(num_samples, dtype=np.float32)
    noise = rng.standard_normal(num_samples)
    if kind == "brown":
        noise = np.cumsum(noise)
        noise -= np.linspace(noise[0], noise[-1], num_samples)  # no drift
    noise *= level / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    return noise.astype(np.float32)


def place(
    recordings: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, noise: str, level: float
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One clip with ``recordings`` at random non-overlapping offsets; returns it and the speech segments."""
    total = int(seconds * TARGET_SAMPLING_RATE)
    clip = background(noise, total, level, rng)
    segments: list[tuple[float, float]] = []
    free_start = 0
    for i, rec in enumerate(recordings):
        rec = rec[: total // max(1, len(recordings))]
        room = total - free_start - sum(len(r) for r in recordings[i + 1 :]) - len(rec)
        start = free_start + int(rng.integers(0, max(1, room)))
        gain = float(rng.uniform(0.3, 1.0)) / max(float(np.abs(rec).max()), 1e-6)
        clip[start : start + len(rec)] += gain * rec
        segments.append((start / TARGET_SAMPLING_RATE, (start + len(rec)) / TARGET_SAMPLING_RATE))
        free_start = start + len(rec)
    return np.clip(clip, -1.0, 1.0), segments


def make_vad_corpus(
    sources: Sequence[str], output: str | os.PathLike, num_clips: int, seconds: float = 2.0, seed: int = 0
) -> str:
    """Write ``num_clips`` clips (FLAC) and ``metadata.csv`` (``file_name,segments,noise``) to ``output``."""
    if not sources:
        raise ValueError("make_vad_corpus needs source recordings")
    rng = np.random.default_rng(seed)
    out = Path(output)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    cache: dict[str, np.ndarray] = {}
    rows = []
    for index in tqdm(range(num_clips), desc="vad clips"):
        count = int(rng.choice([0, 1, 1, 2, 2]))
        picked = [sources[int(rng.integers(len(sources)))] for _ in range(count)]
        recs = [cache.setdefault(p, trim(load_audio(p, TARGET_SAMPLING_RATE))) for p in picked]
        noise = str(rng.choice(["silence", "white", "brown"]))
        level = float(10 ** rng.uniform(-3.5, -2.0))  # -70 .. -40 dBFS RMS
        clip, segments = place([r for r in recs if len(r)], seconds, rng, noise, level)
        name = f"audio/vad_{index:05d}.flac"
        sf.write(out / name, clip, TARGET_SAMPLING_RATE)
        rows.append({"file_name": name, "segments": ";".join(f"{a:.4f}-{b:.4f}" for a, b in segments), "noise": noise})
    with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "segments", "noise"])
        writer.writeheader()
        writer.writerows(rows)
    return os.fspath(out / "metadata.csv")
