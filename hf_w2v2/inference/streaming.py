"""Streaming transcription: audio in pieces, partial and final text out.

TEMPORARY STAND-IN (issue-34b) for the streaming core that issue-34a writes in this file; it
has the same public interface so the server can be built and tested against it, and is
replaced wholesale when issue-34a is merged. It re-decodes the current utterance (audio since
the last pause) every ``chunk_seconds`` for a partial and cuts a final at ``pause_seconds`` of
low energy, decoding that utterance offline, so a final equals the offline transcription of
its utterance.

Shape legend: T samples, F frames, V vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr
import torch

from hf_w2v2.decoding.outputs import Transcription
from hf_w2v2.inference.transcribe import Transcriber

ENERGY_FLOOR_DB = -40.0  # dBFS; a 20 ms frame below this is silence
VAD_FRAME_SECONDS = 0.02  # energy frames of 20 ms


@dataclass(frozen=True)
class WordTiming:
    """A word with its time in the stream (seconds) and its mean frame posterior."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class StreamEvent:
    """A partial (may still change) or final (never rewritten) result."""

    type: Literal["partial", "final"]
    text: str
    words: tuple[WordTiming, ...]


@dataclass(frozen=True)
class StreamSettings:
    """How often partials come and where finals are cut."""

    chunk_seconds: float = 0.5
    """Audio between two partials."""
    left_context_seconds: float = 5.0
    """Unused by this stand-in (it decodes the whole utterance)."""
    lookahead_seconds: float = 0.0
    """Unused by this stand-in."""
    pause_seconds: float = 0.5
    """Silence that ends an utterance (and emits a final)."""


def word_timings(transcription: Transcription, logits: torch.Tensor, offset: float = 0.0) -> tuple[WordTiming, ...]:
    """Words of ``transcription`` with ``offset`` seconds added and the mean best posterior of their frames."""
    best = torch.softmax(logits.float(), dim=-1).max(dim=-1).values  # (F,)
    words = []
    for span in transcription.words:
        frames = best[span.start_frame : max(span.end_frame, span.start_frame + 1)]
        confidence = float(frames.mean()) if frames.numel() else 0.0
        words.append(WordTiming(span.text, round(span.start + offset, 3), round(span.end + offset, 3), confidence))
    return tuple(words)


class StreamingTranscriber:
    """Makes :class:`StreamSession` objects sharing one :class:`Transcriber`."""

    def __init__(self, transcriber: Transcriber, settings: StreamSettings = StreamSettings(), vad=None) -> None:
        self.transcriber = transcriber
        self.settings = settings

    def session(self, sample_rate: int) -> StreamSession:
        return StreamSession(self.transcriber, self.settings, sample_rate)


class StreamSession:
    """One stream: call :meth:`feed` with each piece of audio, then :meth:`finish`."""

    def __init__(self, transcriber: Transcriber, settings: StreamSettings, sample_rate: int) -> None:
        self.transcriber = transcriber
        self.settings = settings
        self.rate = transcriber.sampling_rate
        self.resampler = None if sample_rate == self.rate else soxr.ResampleStream(sample_rate, self.rate, 1)
        self.utterance = np.zeros(0, dtype=np.float32)  # (T,) since the last final
        self.offset = 0.0  # seconds of the stream before the utterance
        self.since_partial = 0  # samples fed since the last partial
        self.silent_tail = 0  # samples of trailing silence
        self.heard_speech = False
        self.last_partial = ""

    def feed(self, samples: np.ndarray) -> list[StreamEvent]:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples)
        self.utterance = np.concatenate([self.utterance, samples])
        self.since_partial += samples.shape[0]
        self._track_energy(samples)
        if self.heard_speech and self.silent_tail >= self.settings.pause_seconds * self.rate:
            return self._final()
        if self.heard_speech and self.since_partial >= self.settings.chunk_seconds * self.rate:
            self.since_partial = 0
            event = self._decode("partial")
            if event is not None and event.text != self.last_partial:
                self.last_partial = event.text
                return [event]
        return []

    def finish(self) -> list[StreamEvent]:
        if self.resampler is not None:
            self.utterance = np.concatenate(
                [self.utterance, self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)]
            )
        return self._final() if self.heard_speech else []

    def _track_energy(self, samples: np.ndarray) -> None:
        frame = int(VAD_FRAME_SECONDS * self.rate)
        for start in range(0, samples.shape[0], frame):
            piece = samples[start : start + frame]
            level = 10 * np.log10(float(np.mean(piece**2)) + 1e-12)
            if level > ENERGY_FLOOR_DB:
                self.heard_speech, self.silent_tail = True, 0
            else:
                self.silent_tail += piece.shape[0]

    def _decode(self, kind: Literal["partial", "final"]) -> StreamEvent | None:
        if self.utterance.shape[0] < self.rate // 10:
            return None
        logits = self.transcriber.logits(self.utterance)  # (F, V)
        transcription = self.transcriber.decode([logits])[0]
        return StreamEvent(kind, transcription.text, word_timings(transcription, logits, self.offset))

    def _final(self) -> list[StreamEvent]:
        event = self._decode("final")
        self.offset += self.utterance.shape[0] / self.rate
        self.utterance = np.zeros(0, dtype=np.float32)
        self.since_partial, self.silent_tail, self.heard_speech, self.last_partial = 0, 0, False, ""
        return [] if event is None or not event.text else [event]
