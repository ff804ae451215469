"""Labelled clips for utterance classification, speaker embeddings and frame classification.

Shape legend: T samples, F frames.

A source is anything :func:`hf_w2v2.data.sources.read_source` reads (audiofolder, CSV/TSV/JSONL
manifest, ``datasets`` folder) with a *label column* (the digit, the speaker, any class name)
instead of a transcript. Clips are decoded once into memory at 16 kHz, normalised like
``Wav2Vec2FeatureExtractor(do_normalize=True)`` and optionally cut to ``max_seconds`` (the centre
is kept). Nothing is dropped silently: a :class:`ClipReport` counts clips shorter than the
encoder's receptive field, unreadable files and, for evaluation sets, clips whose label the
model was not trained on.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, AudioLoadError, load_audio, load_audio_bytes, normalize_waveform
from hf_w2v2.data.collator import DataCollatorCTCWithPadding, pad_sequences
from hf_w2v2.data.sources import Utterance, read_source

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabeledClip:
    """One recording and its class name; audio from ``audio_bytes`` if set, else ``path``."""

    id: str
    label: str
    path: str | None = None
    audio_bytes: bytes | None = None

    @property
    def name(self) -> str:
        return self.path or self.id


def read_labeled(
    source: str | os.PathLike,
    label_column: str = "label",
    audio_column: str | None = None,
    allow_empty: bool = False,
    allow_outside_root: bool | None = None,
) -> list[LabeledClip]:
    """The clips of ``source`` with their ``label_column`` value (paths confined as
    :func:`~hf_w2v2.data.sources.read_source` confines them; a clip listed with two labels is an error).

    Raises:
        ValueError: the source has no ``label_column`` (the columns are named), a row's label is
            empty (the rows are named; unless ``allow_empty``), or the source is a multi-split ``DatasetDict``.
    """
    try:
        read = read_source(source, label_column, audio_column, allow_outside_root)
    except ValueError as err:
        if f"text column {label_column!r}" in str(err):
            raise ValueError(str(err).replace("text column", "label column")) from err
        raise
    if isinstance(read, dict):
        raise ValueError(f"{source} holds several splits {sorted(read)}; give one split's folder or manifest")
    empty = [] if allow_empty else [u.name for u in read if not (u.text or "").strip()]
    if empty:
        raise ValueError(f"{len(empty)} row(s) of {source} have an empty {label_column!r} label, e.g. {empty[:5]}")
    return [_clip(u) for u in read]


def _clip(utt: Utterance) -> LabeledClip:
    return LabeledClip(id=utt.id, label=str(utt.text).strip(), path=utt.path, audio_bytes=utt.audio_bytes)


def label_names(clips: Sequence[LabeledClip], source: str = "the training data", column: str = "label") -> list[str]:
    """Sorted class names of ``clips`` (numerically when all are integers).

    Raises:
        ValueError: fewer than two classes.
    """
    names = sorted({c.label for c in clips}, key=lambda n: (0, int(n), n) if n.lstrip("-").isdigit() else (1, 0, n))
    if len(names) < 2:
        found = f"only the class {names[0]!r}" if names else "no clips"
        raise ValueError(f"label column {column!r} of {source} has {found}: classification needs at least 2 classes")
    return names


@dataclass
class ClipReport:
    """What happened to each clip of a split."""

    name: str
    total: int = 0
    kept: int = 0
    kept_seconds: float = 0.0
    too_short: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    unseen_labels: Counter[str] = field(default_factory=Counter)  # label -> clips skipped (not a trained class)
    cropped: int = 0
    padded: int = 0  # shorter than the head needs (x-vector statistics pooling): zero-padded, kept

    def format(self) -> str:
        unseen = sum(self.unseen_labels.values())
        line = (
            f"{self.name}: kept {self.kept}/{self.total} clips ({self.kept_seconds / 60:.1f} min); skipped "
            f"{len(self.too_short)} shorter than the receptive field, {len(self.unreadable)} unreadable, "
            f"{unseen} with a class unseen in training {dict(self.unseen_labels.most_common(10))}; "
            f"{self.cropped} cut to max_seconds, {self.padded} zero-padded to the head's minimum"
        )
        return "\n".join([line] + [f"  unreadable: {name} ({why})" for name, why in self.unreadable[:20]])

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": self.kept,
            "too_short": len(self.too_short),
            "unreadable": len(self.unreadable),
            "unseen_label_clips": sum(self.unseen_labels.values()),
            "unseen_labels": dict(self.unseen_labels),
            "cropped": self.cropped,
            "padded": self.padded,
        }


def centre_crop(audio: np.ndarray, max_samples: int | None) -> np.ndarray:
    """The middle ``max_samples`` of ``audio`` (T,), or all of it when shorter."""
    if max_samples is None or audio.shape[0] <= max_samples:
        return audio
    start = (audio.shape[0] - max_samples) // 2
    return audio[start : start + max_samples]


def _decode(clip: LabeledClip) -> np.ndarray | str:
    try:
        if clip.audio_bytes is not None:
            return load_audio_bytes(clip.audio_bytes, TARGET_SAMPLING_RATE, name=clip.name)
        return load_audio(clip.path or clip.id, TARGET_SAMPLING_RATE)
    except AudioLoadError as err:
        return str(err)


class ClipDataset(torch.utils.data.Dataset):
    """Decoded, normalised clips with integer labels; items are ``{"input_values", "labels"}``."""

    def __init__(self, audio: list[np.ndarray], labels: list[Any], names: list[str], report: ClipReport) -> None:
        self.audio, self.labels, self.names, self.report = audio, labels, names, report

    def __len__(self) -> int:
        return len(self.audio)

    @property
    def lengths(self) -> list[int]:
        """Samples per clip (length-grouped and by-seconds batches read them without decoding)."""
        return [len(audio) for audio in self.audio]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_values": self.audio[index], "labels": self.labels[index]}


def _usable_waves(
    name: str,
    clips: Sequence[LabeledClip],
    report: ClipReport,
    min_samples: int,
    workers: int | None,
    show_progress: bool,
) -> Iterator[tuple[LabeledClip, np.ndarray]]:
    """``(clip, waveform)`` of each decodable clip of at least ``min_samples``, in order; unreadable and
    too-short clips are counted in ``report`` and skipped. Decoding runs in a thread pool."""
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        decoded = pool.map(_decode, clips)
        for clip, wave in tqdm(
            zip(clips, decoded), total=len(clips), desc=f"decoding {name}", disable=not show_progress
        ):
            if isinstance(wave, str):
                report.unreadable.append((clip.name, wave))
            elif wave.shape[0] < min_samples:
                report.too_short.append(clip.name)
            else:
                yield clip, wave


@dataclass(frozen=True)
class ClipLengths:
    """The lengths a classification clip is held to, at 16 kHz (each clip cropped, skipped or padded is counted)."""

    min_samples: int
    """Samples; shorter clips are skipped: the encoder's receptive field
    (:func:`hf_w2v2.classify.inference.min_samples_for`)."""
    max_seconds: float | None = None
    """Seconds; longer clips are centre-cropped to it (``None``: no limit)."""
    pad_to_samples: int = 0
    """Samples; shorter clips are zero-padded to it: what a head with its own receptive field needs
    (e.g. the x-vector TDNN; 0: no padding)."""


def load_clips(
    name: str,
    clips: Sequence[LabeledClip],
    label_ids: Mapping[str, int],
    lengths: ClipLengths,
    workers: int | None = None,
    show_progress: bool = True,
) -> ClipDataset:
    """Decode ``clips`` into a :class:`ClipDataset`, counting every skip in its report.

    ``label_ids`` maps the trained class names to ids; clips of other labels are skipped and
    counted in ``report.unseen_labels``. ``lengths``: clips shorter than its ``min_samples`` are
    skipped, longer than its ``max_seconds`` centre-cropped, shorter than its ``pad_to_samples``
    zero-padded (each counted). ``workers`` decoding threads (default: CPU cores, at most 4).
    """
    report = ClipReport(name=name, total=len(clips))
    max_seconds, pad_to_samples = lengths.max_seconds, lengths.pad_to_samples
    max_samples = None if max_seconds is None else int(max_seconds * TARGET_SAMPLING_RATE)
    known = [c for c in clips if c.label in label_ids]
    report.unseen_labels.update(c.label for c in clips if c.label not in label_ids)
    audio, labels, names = [], [], []
    for clip, wave in _usable_waves(name, known, report, lengths.min_samples, workers, show_progress):
        cut = normalize_waveform(centre_crop(wave, max_samples))
        report.cropped += int(cut.shape[0] < wave.shape[0])
        if cut.shape[0] < pad_to_samples:
            cut = np.pad(cut, (0, pad_to_samples - cut.shape[0]))  # silence after the normalised clip
            report.padded += 1
        audio.append(cut)
        labels.append(label_ids[clip.label])
        names.append(clip.name)
        report.kept += 1
        report.kept_seconds += cut.shape[0] / TARGET_SAMPLING_RATE
    logger.info(report.format())
    return ClipDataset(audio, labels, names, report)


@dataclass
class ClassificationCollator:
    """Pad ``input_values`` (B, T) (with ``attention_mask`` for layer-norm models) and stack ``labels``.

    Integer labels give ``(B,)``; frame labels (``(F, L)`` arrays of equal F) give ``(B, F, L)``.
    """

    return_attention_mask: bool = True
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty list of features")
        audio = [np.asarray(item["input_values"], dtype=np.float32).reshape(-1) for item in features]
        input_values, lengths = pad_sequences(audio, 0.0, self.pad_to_multiple_of, np.dtype(np.float32))  # (B, T), (B,)
        batch = {"input_values": input_values}
        if self.return_attention_mask:
            batch["attention_mask"] = DataCollatorCTCWithPadding.attention_mask(lengths.numpy(), input_values.shape[1])
        if "labels" in features[0]:
            labels = [np.asarray(item["labels"]) for item in features]
            batch["labels"] = torch.from_numpy(np.stack(labels))  # (B,) or (B, F, L)
        return batch


FRAME_LABELS = ("non-speech", "speech")
"""Class names of the voice-activity frame task (``--task frame``)."""


def parse_segments(text: str, source: str = "") -> list[tuple[float, float]]:
    """``"0.50-1.02;1.5-2"`` -> ``[(0.5, 1.02), (1.5, 2.0)]`` (seconds); empty text -> no segment."""
    segments = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        start, sep, end = part.partition("-")
        try:
            segment = (float(start), float(end))
        except ValueError:
            segment = (1.0, 0.0)
        if not sep or segment[1] < segment[0] or segment[0] < 0:
            raise ValueError(f"{source}: bad segment {part!r}; expected START-END in seconds, START <= END")
        segments.append(segment)
    return segments


def frame_targets(
    segments: Sequence[tuple[float, float]], num_frames: int, frame_step: int, frame_span: int
) -> np.ndarray:
    """(F, 2) one-hot frame targets: speech where a frame's centre lies inside a segment.

    Frame f covers samples ``[f * frame_step, f * frame_step + frame_span)`` at 16 kHz (the encoder's
    hop and receptive field: 320 and 400 for wav2vec 2.0).
    """
    centres = (np.arange(num_frames) * frame_step + frame_span / 2) / TARGET_SAMPLING_RATE  # (F,) seconds
    speech = np.zeros(num_frames, dtype=bool)
    for start, end in segments:
        speech |= (centres >= start) & (centres < end)
    return np.eye(2, dtype=np.float32)[speech.astype(np.int64)]  # (F,) -> (F, 2)


def load_frame_clips(
    name: str,
    clips: Sequence[LabeledClip],
    min_samples: int,
    num_frames: Callable[[int], int],
    frame_step: int,
    workers: int | None = None,
    show_progress: bool = True,
) -> ClipDataset:
    """Decode ``clips`` whose labels are speech segments into a dataset of (F, 2) frame targets.

    ``num_frames`` maps a clip's sample count to the encoder's frame count.
    """
    report = ClipReport(name=name, total=len(clips))
    audio, labels, names = [], [], []
    for clip, wave in _usable_waves(name, clips, report, min_samples, workers, show_progress):
        segments = parse_segments(clip.label, clip.name)
        audio.append(normalize_waveform(wave))
        labels.append(frame_targets(segments, num_frames(wave.shape[0]), frame_step, min_samples))
        names.append(clip.name)
        report.kept += 1
        report.kept_seconds += wave.shape[0] / TARGET_SAMPLING_RATE
    logger.info(report.format())
    return ClipDataset(audio, labels, names, report)
