"""CTC training data decoded on demand, for corpora larger than RAM.

Shape legend: T samples (16 kHz).

:func:`prepare_lazy_ctc_dataset` does every check of :func:`hf_w2v2.data.prepare.prepare_ctc_dataset`
before training, from the transcripts and the file *headers* only (plus the last few frames each
header declares, read to find files cut short): empty
transcripts, out-of-vocabulary characters, unreadable or truncated files, clips shorter than the receptive
field or ``min_duration``, longer than ``max_duration``, or with fewer frames than CTC needs for
their labels; each is counted in the same :class:`~hf_w2v2.data.prepare.FilterReport`. The
:class:`LazyCTCDataset` it returns then holds only paths, token ids and lengths: each item is
decoded, resampled to 16 kHz, down-mixed and normalised in the DataLoader worker that asks for it,
so memory does not grow with the corpus (a few hundred bytes per clip instead of 230 MB per hour).

Items are the eager dataset's: ``input_values`` float32 ``(T,)``, ``input_length`` T, ``labels``
int64 token ids and ``name``, so the same collator, sampler and trainer serve both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import Wav2Vec2Processor

from hf_w2v2.data.audio import (
    AudioInfo,
    AudioLoadError,
    audio_info,
    audio_info_bytes,
    check_audio_end,
    normalize_waveform,
)
from hf_w2v2.data.ctc_filter import CTCFilter, HasConvGeometry
from hf_w2v2.data.prepare import (
    FilterReport,
    ctc_min_frames,
    decode_utterance,
    log_filter_report,
    tokenize_transcripts,
)
from hf_w2v2.data.sources import Utterance
from hf_w2v2.models.lengths import conv_output_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LazyClip:
    """What one kept training clip costs in memory: where its audio is, its labels and its length."""

    utterance: Utterance
    labels: tuple[int, ...]
    num_samples: int  # at the processor's sampling rate, from the header


def header(utt: Utterance) -> AudioInfo:
    """The header of an utterance's audio (file or in-memory bytes), checked to reach its declared end
    (:func:`~hf_w2v2.data.audio.check_audio_end`: a clip cut short is unreadable now, not replaced
    by the next clip in training), without decoding it."""
    if utt.audio_bytes is not None:
        info = audio_info_bytes(utt.audio_bytes, utt.name)
        check_audio_end(utt.audio_bytes, info)
        return info
    if utt.path is None:
        raise AudioLoadError(f"utterance {utt.id} has neither audio bytes nor a path")
    info = audio_info(utt.path)
    check_audio_end(utt.path, info)
    return info


class LazyCTCDataset(torch.utils.data.Dataset):
    """Map-style CTC dataset whose items are decoded when read (in DataLoader workers).

    A clip whose header was fine but whose samples fail to decode at training time is logged
    and replaced by the next clip, so one bad file does not stop a long run.
    """

    def __init__(self, clips: Sequence[LazyClip], sampling_rate: int) -> None:
        if not clips:
            raise ValueError("no clip to train on")
        self.clips = list(clips)
        self.sampling_rate = sampling_rate

    @property
    def lengths(self) -> list[int]:
        """Samples per item (from the headers), for length grouping and batches by seconds."""
        return [clip.num_samples for clip in self.clips]

    @property
    def names(self) -> list[str]:
        return [clip.utterance.name for clip in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, object]:
        for attempt in range(len(self.clips)):
            clip = self.clips[(index + attempt) % len(self.clips)]
            try:
                audio = decode_utterance(clip.utterance, self.sampling_rate)  # (T,)
            except AudioLoadError as err:
                logger.warning("skipping a clip that no longer decodes: %s", err)
                continue
            return {
                "input_values": normalize_waveform(audio),
                "input_length": audio.shape[0],
                "labels": np.asarray(clip.labels, dtype=np.int64),
                "name": clip.utterance.name,
            }
        raise AudioLoadError("no clip of the dataset can be decoded")


def prepare_lazy_ctc_dataset(
    utterances: Sequence[Utterance],
    processor: Wav2Vec2Processor,
    config: HasConvGeometry,
    filters: CTCFilter | None = None,
    *,
    num_workers: int | None = None,
    show_progress: bool = True,
) -> tuple[LazyCTCDataset, FilterReport]:
    """Check ``utterances`` from transcripts and headers; return a :class:`LazyCTCDataset` of the kept ones.

    The arguments (``filters``: one :class:`~hf_w2v2.data.ctc_filter.CTCFilter`) and the report are those of
    :func:`hf_w2v2.data.prepare.prepare_ctc_dataset`; ``num_workers`` threads read headers (default: CPU
    cores, at most 8).

    Raises:
        ValueError: no utterance survives the filters (the message holds the report).
    """
    sampling_rate = int(processor.feature_extractor.sampling_rate)
    filters = filters or CTCFilter()
    min_samples, max_samples = filters.sample_bounds(sampling_rate, config)
    report = FilterReport(total=len(utterances))
    items = tokenize_transcripts(utterances, processor, filters, report)

    def read_header(item: tuple[Utterance, list[int]]) -> AudioInfo | str:
        try:
            return header(item[0])
        except AudioLoadError as err:
            return str(err)

    clips = []
    workers = num_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        headers = pool.map(read_header, items)
        for (utt, labels), info in tqdm(
            zip(items, headers), total=len(items), desc="reading headers", unit="utt", disable=not show_progress
        ):
            if isinstance(info, str) or info.num_frames == 0:
                report.unreadable.append(
                    (utt.name, info if isinstance(info, str) else f"audio file holds no samples: {utt.name}")
                )
                continue
            num_samples = round(info.num_frames * sampling_rate / info.sampling_rate)
            frames = conv_output_length(num_samples, config.conv_kernel, config.conv_stride)
            if num_samples < min_samples or frames < ctc_min_frames(labels):
                report.too_short.append(utt.name)
            elif max_samples is not None and num_samples > max_samples:
                report.too_long.append(utt.name)
            else:
                clips.append(LazyClip(utt, tuple(labels), num_samples))
                report.kept += 1
                report.kept_seconds += num_samples / sampling_rate
    log_filter_report(report)
    if report.kept == 0:
        raise ValueError(f"no utterance left after filtering: {report.format()}")
    return LazyCTCDataset(clips, sampling_rate), report
