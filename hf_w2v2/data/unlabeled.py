"""Unlabeled audio for self-supervised pre-training.

Shape legend: T samples (16 kHz).

A *source* is a folder (searched recursively for audio files) or a manifest:

- fairseq ``.tsv``: first line the root folder, then ``relative/path<TAB>num_samples``;
- ``.csv`` with a ``file_name`` (or ``path``) column, paths relative to the csv
  (the Hugging Face ``audiofolder`` ``metadata.csv``);
- anything else: one path per line (relative to the manifest's folder).

Files of any sample rate and channel count are accepted; they are decoded by
:func:`hf_w2v2.data.audio.load_audio` into 16 kHz mono. :func:`scan_audio`
reads only headers, drops files shorter than ``min_seconds`` and reports
unreadable ones instead of failing. :class:`UnlabeledAudioDataset` crops each
clip at a random offset to ``max_seconds`` (deterministic in ``seed``, epoch and
index, so a resumed run sees the same crops), and :class:`LengthGroupedSampler`
groups clips of similar length into batches to limit padding.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, AudioLoadError, audio_info, load_audio

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
MEGABATCH_FACTOR = 50  # batches shuffled together before sorting by length (as transformers' LengthGroupedSampler)


@dataclass(frozen=True)
class AudioClip:
    """An audio file and its length once resampled to 16 kHz."""

    path: str
    num_samples: int  # at TARGET_SAMPLING_RATE

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_samples / TARGET_SAMPLING_RATE


@dataclass
class ScanResult:
    """Outcome of :func:`scan_audio`: usable clips, unreadable files and the count of short ones."""

    clips: list[AudioClip]
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    too_short: int = 0

    @property
    def hours(self) -> float:
        return sum(clip.duration for clip in self.clips) / 3600


def find_audio_files(root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[str]:
    """Audio files under ``root`` (recursive, case-insensitive extension match), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"not a folder: {root}")
    wanted = tuple(ext.lower() for ext in extensions)
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def read_manifest(manifest: str | os.PathLike) -> list[str]:
    """Absolute audio paths listed by a fairseq ``.tsv``, an audiofolder ``.csv`` or a plain list."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ValueError(f"manifest not found: {manifest}")
    base = manifest.parent
    lines = manifest.read_text().splitlines()
    if manifest.suffix.lower() == ".tsv":
        if not lines:
            raise ValueError(f"empty fairseq manifest (no root line): {manifest}")
        base = Path(lines[0].strip())
        names = [line.split("\t")[0] for line in lines[1:] if line.strip()]
    elif manifest.suffix.lower() == ".csv":
        rows = list(csv.DictReader(lines))
        column = next((c for c in ("file_name", "path", "audio") if rows and c in rows[0]), None)
        if column is None:
            raise ValueError(f"{manifest} needs a 'file_name' or 'path' column")
        names = [row[column] for row in rows]
    else:
        names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [str(base / name) for name in names]


def list_audio(source: str | os.PathLike) -> list[str]:
    """Audio paths of a folder (recursive) or a manifest file."""
    return find_audio_files(source) if Path(source).is_dir() else read_manifest(source)


def scan_audio(
    paths: Sequence[str], *, min_seconds: float = 0.0, progress: bool = True
) -> ScanResult:
    """Read the headers of ``paths``; keep clips of at least ``min_seconds``.

    Unreadable files (missing, not audio, empty) are collected with the reason,
    logged once in a summary, and skipped.
    """
    result = ScanResult(clips=[])
    for path in tqdm(paths, desc="scanning audio", unit="file", disable=not progress):
        try:
            info = audio_info(path)
        except AudioLoadError as err:
            result.unreadable.append((path, str(err)))
            continue
        if info.num_frames == 0:
            result.unreadable.append((path, "no samples"))
            continue
        num_samples = round(info.num_frames * TARGET_SAMPLING_RATE / info.sampling_rate)
        if num_samples < min_seconds * TARGET_SAMPLING_RATE:
            result.too_short += 1
            continue
        result.clips.append(AudioClip(path, num_samples))
    if result.unreadable:
        shown = "; ".join(f"{p}: {why}" for p, why in result.unreadable[:5])
        logger.warning("skipped %d unreadable audio files (first: %s)", len(result.unreadable), shown)
    return result


def crop_offset(num_samples: int, max_samples: int, *, seed: int, epoch: int, index: int) -> int:
    """Start of a random window of ``max_samples`` inside ``num_samples`` (0 when it fits)."""
    if num_samples <= max_samples:
        return 0
    generator = torch.Generator().manual_seed(hash((seed, epoch, index)) & 0x7FFF_FFFF_FFFF_FFFF)
    return int(torch.randint(0, num_samples - max_samples + 1, (1,), generator=generator))


class UnlabeledAudioDataset(torch.utils.data.Dataset):
    """Random crops of at most ``max_seconds`` of 16 kHz mono audio; items ``{"input_values": (T,) float32}``.

    Call :meth:`set_epoch` (accelerate and :class:`LengthGroupedSampler` do) to
    draw new crops each epoch. A file that fails to decode at training time is
    logged and replaced by the next clip.
    """

    def __init__(self, clips: Sequence[AudioClip], *, max_seconds: float | None = 15.6, seed: int = 0) -> None:
        if not clips:
            raise ValueError("no audio clips to train on (check the source and min_seconds)")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.clips = list(clips)
        self.max_samples = None if max_seconds is None else int(max_seconds * TARGET_SAMPLING_RATE)
        self.seed = seed
        self.epoch = 0

    @property
    def lengths(self) -> list[int]:
        """Samples per item after cropping (what length grouping sorts by)."""
        cap = self.max_samples
        return [clip.num_samples if cap is None else min(clip.num_samples, cap) for clip in self.clips]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        for attempt in range(len(self.clips)):
            current = (index + attempt) % len(self.clips)
            try:
                audio = load_audio(self.clips[current].path, sampling_rate=TARGET_SAMPLING_RATE)  # (T,)
            except AudioLoadError as err:
                logger.warning("skipping unreadable audio: %s", err)
                continue
            if self.max_samples is not None:
                start = crop_offset(len(audio), self.max_samples, seed=self.seed, epoch=self.epoch, index=current)
                audio = audio[start : start + self.max_samples]  # (T,) -> (<= max_samples,)
            return {"input_values": audio}
        raise AudioLoadError("no clip of the dataset can be decoded")


def length_grouped_order(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[int]:
    """A random permutation where consecutive ``batch_size`` items have similar lengths.

    Shuffle, cut into megabatches of ``MEGABATCH_FACTOR * batch_size`` items,
    sort each megabatch by length and cut it into batches, then shuffle the
    batches. The batch holding the longest item goes first so that an
    out-of-memory error shows up at the first step.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = MEGABATCH_FACTOR * batch_size
    batches = []
    for start in range(0, len(order), size):
        megabatch = sorted(order[start : start + size], key=lambda j: -lengths[j])
        batches += [megabatch[i : i + batch_size] for i in range(0, len(megabatch), batch_size)]
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    longest = max(range(len(batches)), key=lambda b: lengths[batches[b][0]])
    batches[0], batches[longest] = batches[longest], batches[0]
    return [i for batch in batches for i in batch]


class LengthGroupedSampler(torch.utils.data.Sampler[int]):
    """Length-grouped random order, reproducible from ``seed`` and the epoch.

    ``batch_size`` should be the number of items per optimizer step
    (per-device batch x accumulation steps). ``set_epoch`` is forwarded to
    ``dataset`` (when it has one) so crops change with the epoch too.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, *, seed: int = 0, dataset: object | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(length_grouped_order(self.lengths, self.batch_size, generator))
