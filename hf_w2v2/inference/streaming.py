"""Live transcription: audio arriving in pieces, partial text as it comes, final text at each pause.

Shape legend: T samples, F frames, V vocab.

A :class:`StreamingTranscriber` shares one :class:`~hf_w2v2.inference.transcribe.Transcriber` (the
model) between any number of :class:`StreamSession` objects, one per stream. A session

1. resamples what it is fed to the model's rate (libsoxr, streaming);
2. cuts the audio at pauses with the same causal segmenter as offline transcription
   (:mod:`hf_w2v2.inference.segments`: energy VAD, or the package's VAD model);
3. while a segment is open, runs the model every ``chunk_seconds`` of new audio on a window of
   ``left_context_seconds`` before the chunk and ``lookahead_seconds`` after it, keeps the chunk's
   frames and decodes the segment so far greedily: a *partial* event, sent when its text changes;
4. when the segment closes (a pause, or the end of the stream), transcribes the whole segment as
   offline transcription does (normalised on its own, in overlapping windows only when it is longer
   than the transcriber's window, with its decoder): a *final* event. Finals are never revised: the
   text sent as final is a stable prefix of the stream's transcript.

Because offline transcription of a long file cuts at the same pauses and transcribes each segment
the same way, the concatenated finals of a streamed file equal its offline transcript (up to the
resampler's edges when the stream is not at the model's rate). Word times (seconds from the start of
the stream) and confidences come from the shared decoding functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import soxr
import torch

from hf_w2v2.data.audio import NORMALIZE_EPS, SOXR_QUALITY
from hf_w2v2.decoding.confidence import with_confidences
from hf_w2v2.decoding.greedy import greedy_decode
from hf_w2v2.decoding.outputs import Transcription, WordTiming, join_transcriptions
from hf_w2v2.inference.chunked import chunked_logits, seconds_to_samples
from hf_w2v2.inference.segments import PAUSE_SECONDS, THRESHOLD_DB, ModelVAD, Segmenter, SegmentSettings, SpeechSegment
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.models.lengths import hop_length

__all__ = ["StreamEvent", "StreamSession", "StreamSettings", "StreamingTranscriber", "WordTiming"]

CHUNK_SECONDS = 0.5  # new audio per partial update
LEFT_CONTEXT_SECONDS = 2.0  # audio before a chunk the model sees (within the segment)
LOOKAHEAD_SECONDS = 0.3  # audio after a chunk the model sees; partials lag the input by this much


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is chunked and cut into finals."""

    chunk_seconds: float = CHUNK_SECONDS
    """New audio between two partial updates (rounded to whole frames)."""
    left_context_seconds: float = LEFT_CONTEXT_SECONDS
    """Audio before each chunk (inside the current segment) the model attends over."""
    lookahead_seconds: float = LOOKAHEAD_SECONDS
    """Audio after each chunk the model attends over (at least one frame)."""
    pause_seconds: float = PAUSE_SECONDS
    """Endpointing: non-speech this long closes a segment and sends its final."""
    threshold_db: float = THRESHOLD_DB
    """Energy VAD: dB above the noise floor counted as speech (unused with a VAD model)."""
    max_segment_seconds: float | None = SegmentSettings.max_segment_seconds
    """A segment without pauses is cut (and finalised) when it reaches this length."""
    partials: bool = True
    """Send partial events (``False``: finals only, no model runs between pauses)."""

    def __post_init__(self) -> None:
        for name in ("chunk_seconds", "lookahead_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"StreamSettings.{name} must be > 0, got {getattr(self, name)}")
        if self.left_context_seconds < 0:
            raise ValueError(f"StreamSettings.left_context_seconds must be >= 0, got {self.left_context_seconds}")

    def segment_settings(self) -> SegmentSettings:
        """The segmenter settings these imply (pass the same to offline transcription to compare)."""
        return SegmentSettings(
            pause_seconds=self.pause_seconds,
            threshold_db=self.threshold_db,
            max_segment_seconds=self.max_segment_seconds,
        )


@dataclass(frozen=True)
class StreamEvent:
    """A partial (may still change) or final (never revised) transcript of the current segment.

    ``start``/``end``: the segment's time in seconds from the start of the stream (for a partial, the
    end is how far the audio was decoded)."""

    type: Literal["partial", "final"]
    text: str
    words: tuple[WordTiming, ...]
    start: float = 0.0
    end: float = 0.0


class StreamingTranscriber:
    """One shared model serving independent streams (:meth:`session`).

    Args:
        transcriber: the model, processor and decoder (finals use its decoder; partials are greedy).
        settings: chunking and endpointing.
        vad: the package's VAD model (:class:`~hf_w2v2.inference.segments.ModelVAD`) to cut at
            pauses; ``None`` uses the energy VAD.
    """

    def __init__(
        self, transcriber: Transcriber, settings: StreamSettings | None = None, vad: ModelVAD | None = None
    ) -> None:
        self.transcriber = transcriber
        self.settings = settings or StreamSettings()
        self.segmenter = Segmenter(self.settings.segment_settings(), vad)
        self.sample_rate = transcriber.sampling_rate
        config: Any = transcriber.model.config
        self.hop = hop_length(config.conv_stride)
        self.chunk = max(self.hop, seconds_to_samples(self.settings.chunk_seconds, self.hop, self.sample_rate))
        self.left = seconds_to_samples(self.settings.left_context_seconds, self.hop, self.sample_rate)
        self.lookahead = max(self.hop, seconds_to_samples(self.settings.lookahead_seconds, self.hop, self.sample_rate))

    def session(self, sample_rate: int) -> StreamSession:
        """A new stream of mono audio at ``sample_rate`` Hz (its own state; the model is shared)."""
        return StreamSession(self, sample_rate)

    def transcribe_segment(self, audio: np.ndarray, segment: SpeechSegment) -> Transcription:
        """A segment's transcript as offline transcription makes it, placed in the whole recording."""
        transcriber = self.transcriber
        decoded = transcriber.decode([transcriber.logits(audio)])[0]  # as Transcriber.transcribe_recordings
        return decoded.shifted(segment.start // self.hop, transcriber.seconds_per_frame)

    def partial_logits(self, window: np.ndarray, mean: float, std: float) -> torch.Tensor:
        """``(F, V)`` logits of one window normalised with its segment's statistics so far."""
        values = torch.from_numpy(((window - mean) / std).astype(np.float32))  # (T,)
        return chunked_logits(self.transcriber.model, values, None, bf16=self.transcriber.bf16)


@dataclass
class _Partial:
    """The open segment's partial decoding: frames kept so far and the provisional tail."""

    start: int  # first sample of the segment in the stream
    done: int = 0  # samples of the segment whose frames are kept
    kept: list[torch.Tensor] = field(default_factory=list)  # (F_chunk, V) per chunk
    tail: torch.Tensor | None = None  # (F_lookahead, V) of the last window
    text: str = ""


class StreamSession:
    """The state of one stream: feed audio as it comes, then :meth:`finish`."""

    def __init__(self, owner: StreamingTranscriber, sample_rate: int) -> None:
        if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        self.owner = owner
        self.sample_rate = sample_rate
        self.resampler = (
            None
            if sample_rate == owner.sample_rate
            else soxr.ResampleStream(sample_rate, owner.sample_rate, 1, dtype="float32", quality=SOXR_QUALITY)
        )
        self.segments = owner.segmenter.stream()
        self.buffer = np.zeros(0, dtype=np.float32)  # model-rate samples from self.offset on
        self.offset = 0
        self.received = 0  # model-rate samples so far
        self.partial: _Partial | None = None
        self.finals: list[Transcription] = []
        self.finished = False

    @property
    def seconds(self) -> float:
        """Audio received so far, in seconds."""
        return self.received / self.owner.sample_rate

    def transcript(self) -> Transcription:
        """The finals so far as one transcription (words timed from the start of the stream)."""
        return join_transcriptions(self.finals)

    def feed(self, samples: np.ndarray) -> list[StreamEvent]:
        """Take float32 mono ``samples`` (T,) at the session's rate (any length); return the finals of
        segments this closed, then a partial of the open segment when its text changed.

        Raises:
            ValueError: ``samples`` is not a 1-D array of finite numbers.
            RuntimeError: the session was already finished.
        """
        audio = self._check(samples)
        if self.resampler is not None:
            audio = self.resampler.resample_chunk(audio)
        return self._advance(audio, last=False)

    def finish(self) -> list[StreamEvent]:
        """End of the stream: flush the resampler and the segmenter; return the last final(s)."""
        if self.finished:
            raise RuntimeError("this stream session is already finished")
        tail = np.zeros(0, dtype=np.float32)
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(tail, last=True)
        events = self._advance(tail, last=True)
        self.finished = True
        self.buffer = np.zeros(0, dtype=np.float32)
        return events

    def _check(self, samples: np.ndarray) -> np.ndarray:
        if self.finished:
            raise RuntimeError("this stream session is finished; start a new one")
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"feed takes mono samples of shape (T,), got shape {audio.shape}")
        if not np.isfinite(audio).all():
            raise ValueError("audio holds NaN or infinite samples")
        return audio

    def _advance(self, audio: np.ndarray, last: bool) -> list[StreamEvent]:
        self.buffer = np.concatenate([self.buffer, audio])
        self.received += audio.shape[0]
        closed = self.segments.push(audio)
        if last:
            closed += self.segments.finish()
        events = [event for segment in closed if (event := self._final(segment)) is not None]
        if not last:
            events += self._partials()
        self._trim()
        return events

    def _final(self, segment: SpeechSegment) -> StreamEvent | None:
        self.partial = None
        audio = self.buffer[segment.start - self.offset : segment.end - self.offset]
        try:
            transcription = self.owner.transcribe_segment(audio, segment)
        except ValueError:  # shorter than one frame of the encoder: nothing to say
            return None
        if not transcription.text:
            return None
        self.finals.append(transcription)
        rate = self.owner.sample_rate
        words = transcription.word_timings()
        return StreamEvent("final", transcription.text, words, segment.start / rate, segment.end / rate)

    def _partials(self) -> list[StreamEvent]:
        owner = self.owner
        start = self.segments.open_start
        if start is None or not owner.settings.partials:
            return []
        if self.partial is None or self.partial.start != start:
            self.partial = _Partial(start)
        p = self.partial
        segment = self.buffer[start - self.offset :]  # the open segment so far
        mean, std = float(segment.mean()), float(np.sqrt(segment.var() + NORMALIZE_EPS))
        updated = False  # a partial is decoded only when new frames came
        while segment.shape[0] - p.done >= owner.chunk + owner.lookahead:
            window_from = max(0, p.done - owner.left)
            logits = owner.partial_logits(segment[window_from : p.done + owner.chunk + owner.lookahead], mean, std)
            first = (p.done - window_from) // owner.hop  # window frame j is segment frame window_from / hop + j
            p.kept.append(logits[first : first + owner.chunk // owner.hop])
            p.tail = logits[first + owner.chunk // owner.hop :]
            p.done += owner.chunk
            updated = True
        if not updated or p.tail is None:
            return []
        logits = torch.cat([*p.kept, p.tail])  # (F, V): kept chunks, then the provisional look-ahead
        transcriber = owner.transcriber
        decoded = greedy_decode(logits, transcriber.alphabet, seconds_per_frame=transcriber.seconds_per_frame)[0]
        decoded = with_confidences(decoded, logits, transcriber.alphabet)
        decoded = decoded.shifted(start // owner.hop, transcriber.seconds_per_frame)
        if decoded.text == p.text:
            return []
        p.text = decoded.text
        rate = owner.sample_rate
        end = (start + p.done + owner.lookahead) / rate
        return [StreamEvent("partial", decoded.text, decoded.word_timings(), start / rate, end)]

    def _trim(self) -> None:
        """Drop audio no future segment can start in."""
        keep_from = self.segments.earliest_start
        if keep_from > self.offset:
            self.buffer = self.buffer[keep_from - self.offset :]
            self.offset = keep_from
