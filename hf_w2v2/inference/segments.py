"""Voice-activity segmentation: cut audio at pauses, offline or as it arrives.

Shape legend: T samples, F frames, L labels.

Audio is scored frame by frame on the model's frame grid (``hop`` samples, 20 ms at 16 kHz) by an
energy detector (:class:`EnergyVAD`) or a trained frame classifier (:class:`ModelVAD`, a
``Wav2Vec2ForAudioFrameClassification`` from ``hf-w2v2 classify --task frame``). An endpointer turns the
speech flags into segments: a segment closes once ``pause_seconds`` of non-speech follow its last
speech frame, and keeps up to ``margin_seconds`` of context around its speech, so two segments cut at
a pause may share the non-speech between them (never speech); a recording whose speech starts within
``LEAD_IN_SECONDS`` keeps its start, so a short clip stays whole as the model saw clips in training.
Everything is causal and
chunk-invariant: pushing a recording in one piece or in any chunks gives the same segments, which is
why offline transcription (:meth:`Segmenter.segments`) and streaming (:meth:`Segmenter.stream`) cut
identically.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio, normalize_waveform
from hf_w2v2.decoding.formats import textgrid
from hf_w2v2.models.lengths import conv_output_length, hop_length, receptive_field

FRAME_SAMPLES = 320  # energy frames: 20 ms at 16 kHz, the wav2vec 2.0 frame hop of every released checkpoint
PAUSE_SECONDS = 0.2  # a pause at least this long ends a segment (speech then resumes in a new one)
LEAD_IN_SECONDS = 1.0  # a recording whose speech starts this soon keeps its start in the first segment
MARGIN_SECONDS = 0.1  # non-speech kept before a segment's first speech (after its last: at most a pause)
THRESHOLD_DB = 12.0  # energy VAD: speech is this far above the tracked noise floor ...
MIN_SPEECH_DB = -55.0  # ... and above this absolute level (dB re full scale RMS 1.0)
FLOOR_RISE_DB_PER_S = 3.0  # how fast the noise-floor estimate climbs back after dropping to a quiet frame
MIN_SPEECH_SECONDS = 0.06  # segments with less speech than this (clicks, pops) are dropped
VAD_BLOCK_SECONDS = 2.0  # a VAD model scores fixed blocks of this length (the VAD corpus clips are 2 s)
QUIET_SEARCH_SECONDS = 1.0  # a forced cut goes to the least speech-like frame of this last stretch
MIN_FORCED_SECONDS = 2 * QUIET_SEARCH_SECONDS  # shortest max_segment_seconds
SEGMENT_FORMATS = ("json", "rttm", "textgrid")
PUSH_SAMPLES = 30 * TARGET_SAMPLING_RATE  # offline segmentation scores 30 s at a time (bounded memory)


@dataclass(frozen=True)
class SegmentSettings:
    """How audio is cut at pauses (offline and streaming alike)."""

    pause_seconds: float = PAUSE_SECONDS
    """Non-speech at least this long ends a segment."""
    margin_seconds: float = MARGIN_SECONDS
    """Context kept around the speech: up to this much before it (never reaching back into the previous
    segment's speech) and up to ``min(margin, pause)`` after it. Measured on joined clips with silences
    (docs/long_audio.md): 0.1 s beats 0.5 s by 0.025 CER; it keeps soft onsets the energy VAD misses."""
    threshold_db: float = THRESHOLD_DB
    """Energy VAD: dB above the tracked noise floor that count as speech."""
    min_speech_db: float = MIN_SPEECH_DB
    """Energy VAD: frames quieter than this (dBFS) are never speech."""
    min_speech_seconds: float = MIN_SPEECH_SECONDS
    """Segments holding less speech than this are dropped."""
    max_segment_seconds: float | None = None
    """Force a cut (at the least speech-like frame of the last second) when a segment grows this long."""
    vad_threshold: float = 0.5
    """VAD model: speech posterior above which a frame is speech."""
    vad_block_seconds: float = VAD_BLOCK_SECONDS
    """VAD model: length of the blocks it scores (each normalised on its own, as in training)."""

    def __post_init__(self) -> None:
        if self.margin_seconds < 0:
            raise ValueError(f"margin_seconds must be >= 0, got {self.margin_seconds}")
        if self.pause_seconds <= 0 or self.vad_block_seconds <= 0:
            raise ValueError(
                f"pause_seconds ({self.pause_seconds}) and vad_block_seconds ({self.vad_block_seconds}) must be > 0"
            )
        if self.max_segment_seconds is not None and self.max_segment_seconds < MIN_FORCED_SECONDS:
            raise ValueError(
                f"max_segment_seconds ({self.max_segment_seconds}) must be at least {MIN_FORCED_SECONDS} s"
            )


@dataclass(frozen=True)
class SpeechSegment:
    """Samples ``[start, end)`` of a recording at ``sample_rate`` Hz holding speech, with its margins."""

    start: int
    end: int
    sample_rate: int = TARGET_SAMPLING_RATE

    @property
    def start_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.end / self.sample_rate


class EnergyVAD:
    """Frame energy against a causally tracked noise floor (no model needed)."""

    def __init__(self, settings: SegmentSettings, frame_samples: int = FRAME_SAMPLES) -> None:
        self.settings = settings
        self.frame_samples = frame_samples
        self.floor_db = settings.min_speech_db - settings.threshold_db  # start from "quiet room"
        self.rise_db = FLOOR_RISE_DB_PER_S * frame_samples / TARGET_SAMPLING_RATE  # per frame
        self.pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, speech)`` of each frame completed by ``samples``: energy in dBFS and the flags."""
        audio = np.concatenate([self.pending, samples])
        whole = audio.shape[0] // self.frame_samples * self.frame_samples
        self.pending = audio[whole:]
        return self._score(audio[:whole])

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """The last, partial frame (if any)."""
        tail, self.pending = self.pending, np.zeros(0, dtype=np.float32)
        if tail.shape[0] == 0:
            return np.zeros(0), np.zeros(0, dtype=bool)
        return self._score(np.pad(tail, (0, self.frame_samples - tail.shape[0])))

    def _score(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = audio.reshape(-1, self.frame_samples).astype(np.float64)  # (T,) -> (F, hop)
        energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)  # (F,)
        speech = np.zeros(energy_db.shape[0], dtype=bool)
        for f, level in enumerate(energy_db):  # the floor drops at once, climbs slowly
            self.floor_db = min(self.floor_db + self.rise_db, float(level))
            self.floor_db = max(self.floor_db, self.settings.min_speech_db - 2 * self.settings.threshold_db)
            speech[f] = level > max(self.floor_db + self.settings.threshold_db, self.settings.min_speech_db)
        return energy_db, speech


class ModelVAD:
    """A frame classifier's speech posteriors, scored on fixed blocks (so offline equals streaming).

    Args:
        model: a ``Wav2Vec2ForAudioFrameClassification`` whose ``config.id2label`` names a ``speech``
            class (``hf-w2v2 classify --task frame`` writes ``non-speech``/``speech``).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        config: Any = model.config
        labels = {str(name).lower(): int(i) for i, name in config.id2label.items()}
        if "speech" not in labels:
            raise ValueError(
                f"the VAD model's labels {sorted(labels)} have no 'speech' class: "
                "train it with hf-w2v2 classify --task frame"
            )
        self.model = model.eval()
        self.speech_id = labels["speech"]
        self.kernels, self.strides = config.conv_kernel, config.conv_stride
        self.hop = hop_length(self.strides)

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu") -> ModelVAD:
        """Load a frame-classification model folder."""
        from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification
        from hf_w2v2.models.configuration import Wav2Vec2Config

        config = Wav2Vec2Config.from_pretrained(path)
        if "Wav2Vec2ForAudioFrameClassification" not in (config.architectures or []):
            raise ValueError(
                f"{path} holds a {config.architectures} model, not a frame classifier (VAD): "
                "train one with hf-w2v2 classify --task frame"
            )
        return cls(Wav2Vec2ForAudioFrameClassification.from_pretrained(path).to(device))

    @torch.inference_mode()
    def speech_probs(self, block: np.ndarray) -> np.ndarray:
        """``(F,)`` speech posterior of each ``hop`` frame of one block (F = ceil(T / hop))."""
        num_frames = math.ceil(block.shape[0] / self.hop)
        needed = receptive_field(self.kernels, self.strides)
        padded = np.pad(block, (0, max(0, needed - block.shape[0])))
        values = torch.from_numpy(normalize_waveform(padded)).unsqueeze(0)  # (T,) -> (1, T)
        device = next(self.model.parameters()).device
        logits = self.model(values.to(device)).logits[0].float().cpu()  # (F', L)
        probs = torch.softmax(logits, dim=-1)[:, self.speech_id].numpy()  # (F',)
        # The encoder gives one frame fewer than hops per block: the last hop repeats its neighbour.
        out = np.empty(num_frames)
        count = min(num_frames, conv_output_length(padded.shape[0], self.kernels, self.strides))
        out[:count] = probs[:count]
        out[count:] = probs[count - 1]
        return out


class ModelVADStream:
    """:class:`ModelVAD` over audio arriving in pieces: complete blocks are scored as they fill."""

    def __init__(self, vad: ModelVAD, settings: SegmentSettings) -> None:
        self.vad = vad
        self.threshold = settings.vad_threshold
        self.block = max(1, round(settings.vad_block_seconds * TARGET_SAMPLING_RATE / vad.hop)) * vad.hop
        self.pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.pending = np.concatenate([self.pending, samples])
        scores = []
        while self.pending.shape[0] >= self.block:
            scores.append(self.vad.speech_probs(self.pending[: self.block]))
            self.pending = self.pending[self.block :]
        probs = np.concatenate(scores) if scores else np.zeros(0)
        return probs, probs > self.threshold

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        tail, self.pending = self.pending, np.zeros(0, dtype=np.float32)
        if tail.shape[0] == 0:
            return np.zeros(0), np.zeros(0, dtype=bool)
        probs = self.vad.speech_probs(tail)
        return probs, probs > self.threshold


class Endpointer:
    """Speech flags per frame in, closed segments (in frames) out; causal."""

    def __init__(self, settings: SegmentSettings, frame_seconds: float) -> None:
        self.pause = max(2, round(settings.pause_seconds / frame_seconds))  # frames
        self.margin = round(settings.margin_seconds / frame_seconds)  # frames kept before the speech
        self.tail = min(self.margin, self.pause)  # frames kept after it (a longer tail cost the FSDD probe 0.02 CER)
        self.lead_in = round(LEAD_IN_SECONDS / frame_seconds)
        self.opened = False  # whether a segment was closed (or dropped) already
        self.min_speech = max(1, round(settings.min_speech_seconds / frame_seconds))
        limit = settings.max_segment_seconds
        self.max_frames = None if limit is None else round(limit / frame_seconds)
        self.recent: deque[float] = deque(maxlen=round(QUIET_SEARCH_SECONDS / frame_seconds))  # last scores
        self.frame = 0  # frames seen
        self.cut = 0  # frame where the open segment may start (after the last segment's speech)
        self.first: int | None = None  # first speech frame of the open segment
        self.last = -1  # last speech frame of the open segment
        self.voiced = 0  # speech frames in the open segment

    @property
    def open_start(self) -> int | None:
        """Start frame of the segment in progress once speech was heard in it, else ``None``."""
        if self.first is None:
            return None
        if not self.opened and self.first <= self.lead_in:  # a recording's first words keep its start
            return 0
        return max(self.cut, self.first - self.margin)

    @property
    def earliest_start(self) -> int:
        """No segment closed from now on can start before this frame."""
        start = self.open_start
        if start is not None:
            return start
        if not self.opened and self.frame <= self.lead_in:
            return 0
        return max(self.cut, self.frame - self.margin)

    def push(self, scores: np.ndarray, speech: np.ndarray) -> list[tuple[int, int]]:
        """Segments ``(start, end)`` (frames) closed by these frames' scores and speech flags."""
        closed = []
        for score, is_speech in zip(scores.tolist(), speech.tolist()):
            f = self.frame
            self.frame += 1
            self.recent.append(score)
            if is_speech:
                self.first = f if self.first is None else self.first
                self.last, self.voiced = f, self.voiced + 1
            elif self.first is not None and f - self.last >= self.pause:
                closed += self._close(self.last + 1 + self.tail, self.last + 1)
            start = self.open_start
            if self.max_frames is not None and start is not None and self.frame - start >= self.max_frames:
                closed += self._force_cut()
        return closed

    def finish(self) -> list[tuple[int, int]]:
        """Close the segment in progress at the end of the audio."""
        if self.first is None:
            return []
        return self._close(min(self.frame, self.last + 1 + self.tail), self.frame)

    def _force_cut(self) -> list[tuple[int, int]]:
        """Cut a too-long segment after the least speech-like recent frame; the rest opens the next one."""
        recent = list(self.recent)
        end = self.frame - len(recent) + int(np.argmin(recent)) + 1
        closed = self._close(end, end)
        if end < self.frame:  # the frames after the cut were inside continuous speech
            self.first, self.last, self.voiced = end, self.frame - 1, self.frame - end
        return closed

    def _close(self, end: int, next_from: int) -> list[tuple[int, int]]:
        """Close the open segment at ``end``; the next one may start at ``next_from``."""
        start, voiced = self.open_start, self.voiced
        assert start is not None
        self.cut, self.first, self.last, self.voiced, self.opened = next_from, None, -1, 0, True
        return [(start, end)] if voiced >= self.min_speech else []


class SegmentStream:
    """Segments of one recording arriving in pieces (see :class:`Segmenter`)."""

    def __init__(self, settings: SegmentSettings, vad: ModelVAD | None) -> None:
        self.frame_samples = FRAME_SAMPLES if vad is None else vad.hop
        self.scorer: EnergyVAD | ModelVADStream = (
            EnergyVAD(settings, self.frame_samples) if vad is None else ModelVADStream(vad, settings)
        )
        self.endpointer = Endpointer(settings, self.frame_samples / TARGET_SAMPLING_RATE)
        self.samples = 0

    @property
    def open_start(self) -> int | None:
        """First sample of the segment in progress once speech was heard in it, else ``None``."""
        start = self.endpointer.open_start
        return None if start is None else start * self.frame_samples

    @property
    def earliest_start(self) -> int:
        """No segment closed from now on can start before this sample (older audio may be dropped)."""
        return self.endpointer.earliest_start * self.frame_samples

    def push(self, samples: np.ndarray) -> list[SpeechSegment]:
        """Segments closed by these 16 kHz ``samples`` (T,)."""
        self.samples += samples.shape[0]
        return self._segments(self.endpointer.push(*self.scorer.push(np.asarray(samples, dtype=np.float32))))

    def finish(self) -> list[SpeechSegment]:
        """Segments closed by the end of the audio."""
        closed = self.endpointer.push(*self.scorer.flush())
        return self._segments(closed + self.endpointer.finish())

    def _segments(self, frames: list[tuple[int, int]]) -> list[SpeechSegment]:
        hop = self.frame_samples
        return [SpeechSegment(a * hop, min(b * hop, self.samples)) for a, b in frames if a * hop < self.samples]


class Segmenter:
    """Cuts 16 kHz audio at pauses with an energy VAD, or with ``vad`` (a :class:`ModelVAD`) when given."""

    def __init__(self, settings: SegmentSettings | None = None, vad: ModelVAD | None = None) -> None:
        self.settings = settings or SegmentSettings()
        self.vad = vad

    def stream(self) -> SegmentStream:
        """Fresh state for one recording arriving in pieces."""
        return SegmentStream(self.settings, self.vad)

    def segments(self, audio: np.ndarray) -> list[SpeechSegment]:
        """Speech segments of a whole ``(T,)`` recording (the same as streaming it)."""
        stream, found = self.stream(), []
        for start in range(0, audio.shape[0], PUSH_SAMPLES):  # in pieces: the scorers copy what they get
            found += stream.push(np.asarray(audio[start : start + PUSH_SAMPLES], dtype=np.float32))
        return found + stream.finish()


def render_segments(segments: list[SpeechSegment], fmt: str, path: str, duration: float) -> str:
    """Segments as ``json`` (one object), ``rttm`` (NIST, one SPEAKER line per segment) or ``textgrid``."""
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "audio"
    if fmt == "json":
        rows = [{"start": round(s.start_s, 3), "end": round(s.end_s, 3)} for s in segments]
        return json.dumps({"file": path, "duration": round(duration, 3), "segments": rows}) + "\n"
    if fmt == "rttm":
        lines = [
            f"SPEAKER {name} 1 {s.start_s:.3f} {s.end_s - s.start_s:.3f} <NA> <NA> speech <NA> <NA>" for s in segments
        ]
        return "".join(line + "\n" for line in lines)
    if fmt == "textgrid":
        return textgrid([("speech", [(s.start_s, s.end_s, "speech") for s in segments])], duration)
    raise ValueError(f"unknown segment format {fmt!r}; choose one of {', '.join(SEGMENT_FORMATS)}")


def segment_file(segmenter: Segmenter, path: str, fmt: str = "json") -> str:
    """The speech segments of the audio file ``path`` (read at 16 kHz), rendered by :func:`render_segments`."""
    audio = load_audio(path, TARGET_SAMPLING_RATE)
    return render_segments(segmenter.segments(audio), fmt, path, audio.shape[0] / TARGET_SAMPLING_RATE)
