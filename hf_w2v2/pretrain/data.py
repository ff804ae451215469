"""Unlabeled audio for self-supervised pre-training.

Shape legend: T samples (16 kHz).

A *source* is a folder or a manifest, read by :func:`hf_w2v2.data.sources.read_audio_paths`
(folders searched recursively, audiofolders, csv/tsv/jsonl manifests, fairseq ``.tsv``, plain
lists).

Files of any sample rate and channel count are accepted; they are decoded by
:func:`hf_w2v2.data.audio.load_audio` into 16 kHz mono. :func:`scan_audio`
reads only headers, drops files shorter than ``min_seconds`` and reports
unreadable ones instead of failing. :class:`UnlabeledAudioDataset` crops each
clip at a random offset to ``max_seconds`` (deterministic in ``seed``, epoch and
index, so a resumed run sees the same crops); :class:`hf_w2v2.data.sampler.LengthGroupedSampler`
groups clips of similar length into batches to limit padding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, AudioLoadError, audio_info, load_audio
from hf_w2v2.data.sources import read_audio_paths
from hf_w2v2.pretrain.arguments import DataArguments

logger = logging.getLogger(__name__)


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


def scan_audio(paths: Sequence[str], *, min_seconds: float = 0.0, progress: bool = True) -> ScanResult:
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


def load_audio_set(
    sources: list[str], data: DataArguments, seed: int, limit: int | None = None
) -> UnlabeledAudioDataset:
    """Scan the files of ``sources`` (headers only) and wrap the usable ones as random crops."""
    paths = [path for source in sources for path in read_audio_paths(source)][:limit]
    scan = scan_audio(paths, min_seconds=data.min_seconds)
    logger.info(
        "%s: %d clips, %.2f h; %d shorter than %.1f s, %d unreadable",
        ", ".join(sources),
        len(scan.clips),
        scan.hours,
        scan.too_short,
        data.min_seconds,
        len(scan.unreadable),
    )
    return UnlabeledAudioDataset(scan.clips, max_seconds=data.max_seconds, seed=seed)
