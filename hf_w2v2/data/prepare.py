"""Turn a list of :class:`Utterance` into a ``datasets.Dataset`` ready for CTC training.

Shape legend: T samples, F frames.

Output columns:

* ``input_values``: float32 ``(T,)`` at 16 kHz, normalised per utterance to zero mean and
  unit variance exactly as ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does;
* ``input_length``: T, for ``train_sampling_strategy="group_by_length"`` with
  ``length_column_name="input_length"`` (and ``remove_unused_columns=False``: the Trainer
  drops unused columns *before* building its sampler);
* ``labels``: token ids of the normalised transcript;
* ``name``: the utterance's name (for per-utterance results; the collator ignores it).

The dataset is returned in ``numpy`` format (items are arrays, not Python lists).

Every utterance dropped is counted in a :class:`FilterReport` (and logged): empty
transcript, unreadable audio, too short (under the 400-sample receptive field, ``min_duration``,
or fewer frames than CTC needs for the transcript), too long (``max_duration``). Characters
missing from the vocabulary are counted; those utterances are kept (the characters become
``[UNK]``) unless ``drop_oov=True``. These settings are one :class:`~hf_w2v2.data.ctc_filter.CTCFilter`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm
from transformers import Wav2Vec2Processor

from hf_w2v2.data.audio import AudioLoadError, audio_info, load_audio, load_audio_bytes, normalize_waveform
from hf_w2v2.data.ctc_filter import CTCFilter, HasConvGeometry
from hf_w2v2.data.sources import Utterance
from hf_w2v2.models.lengths import conv_output_length

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

CHUNK = 256  # utterances decoded per Arrow record batch
MAX_CHUNK_SAMPLES = 2**31 - 1  # int32 list offsets of one Arrow record batch (37 h at 16 kHz)
_SCHEMA = pa.schema(
    [
        ("input_values", pa.list_(pa.float32())),
        ("input_length", pa.int64()),
        ("labels", pa.list_(pa.int64())),
        ("name", pa.string()),
    ]
)


@dataclass
class FilterReport:
    """What happened to each utterance given to :func:`prepare_ctc_dataset`."""

    total: int = 0
    kept: int = 0
    kept_seconds: float = 0.0
    empty_transcript: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    too_short: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)
    oov_chars: Counter[str] = field(default_factory=Counter)
    oov_utterances: int = 0  # non-empty transcripts with an out-of-vocabulary character (before audio filters)
    dropped_oov: list[str] = field(default_factory=list)

    def format(self) -> str:
        """One line of counts, then the reasons for unreadable files."""
        line = (
            f"kept {self.kept}/{self.total} utterances ({self.kept_seconds / 3600:.2f} h); dropped: "
            f"{len(self.empty_transcript)} empty transcript, {len(self.unreadable)} unreadable, "
            f"{len(self.too_short)} too short, {len(self.too_long)} too long, "
            f"{len(self.dropped_oov)} out-of-vocabulary; {self.oov_utterances} utterance(s) with "
            f"out-of-vocabulary characters {dict(self.oov_chars.most_common(10))}"
        )
        return "\n".join([line] + [f"  unreadable: {name} ({reason})" for name, reason in self.unreadable[:20]])


def ctc_min_frames(labels: Sequence[int]) -> int:
    """Fewest frames a CTC alignment of ``labels`` needs: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats


@dataclass(frozen=True)
class DecodedClip:
    """One utterance after :func:`decode_checked`: its audio, or why it was dropped."""

    audio: np.ndarray | None  # normalised (T,), or None when dropped
    drop: str | None = None  # "unreadable", "too_short" or "too_long"
    detail: str = ""


def decode_utterance(utt: Utterance, sampling_rate: int) -> np.ndarray:
    """Mono float32 ``(T,)`` at ``sampling_rate`` from the utterance's bytes, else its file.

    Raises:
        AudioLoadError: neither is given, or the audio cannot be decoded.
    """
    if utt.audio_bytes is not None:
        return load_audio_bytes(utt.audio_bytes, sampling_rate, name=utt.name)
    if utt.path is None:
        raise AudioLoadError(f"utterance {utt.id} has neither audio bytes nor a path")
    return load_audio(utt.path, sampling_rate)


def decode_checked(utt: Utterance, sampling_rate: int, min_samples: int, max_samples: int | None) -> DecodedClip:
    """Decode one utterance; reject from the header alone when it is already too long."""
    try:
        if utt.audio_bytes is None and utt.path is not None and max_samples is not None:
            info = audio_info(utt.path)
            if info.num_frames * sampling_rate / info.sampling_rate > max_samples + 1:
                return DecodedClip(None, "too_long")
        audio = decode_utterance(utt, sampling_rate)
    except AudioLoadError as err:
        return DecodedClip(None, "unreadable", str(err))
    if audio.shape[0] < min_samples:
        return DecodedClip(None, "too_short")
    if max_samples is not None and audio.shape[0] > max_samples:
        return DecodedClip(None, "too_long")
    return DecodedClip(normalize_waveform(audio))


def tokenize_transcripts(
    utterances: Sequence[Utterance], processor: Wav2Vec2Processor, filters: CTCFilter, report: FilterReport
) -> list[tuple[Utterance, list[int]]]:
    """Normalise and tokenise transcripts with ``filters.normalizer``; drop empty (and, with
    ``filters.drop_oov``, out-of-vocabulary) ones."""
    vocab = processor.tokenizer.get_vocab()
    kept = []
    for utt in utterances:
        text = filters.normalizer(utt.text or "")
        if not text:
            report.empty_transcript.append(utt.name)
            continue
        oov = [ch for ch in text if ch != " " and ch not in vocab]
        if oov:
            report.oov_chars.update(oov)
            report.oov_utterances += 1
            if filters.drop_oov:
                report.dropped_oov.append(utt.name)
                continue
        kept.append((utt, processor.tokenizer(text).input_ids))
    return kept


def _record_batches(
    items: list[tuple[Utterance, list[int]]],
    sampling_rate: int,
    config: HasConvGeometry,
    filters: CTCFilter,
    num_workers: int,
    report: FilterReport,
    show_progress: bool,
) -> Iterator[dict[str, list]]:
    """Decode ``items`` at ``sampling_rate`` (Hz) in a thread pool (libsndfile and soxr release the GIL),
    CHUNK at a time, keeping those within ``filters``' durations and long enough for CTC under ``config``."""
    min_samples, max_samples = filters.sample_bounds(sampling_rate, config)
    conv = (config.conv_kernel, config.conv_stride)
    progress = tqdm(total=len(items), desc="loading audio", unit="utt", disable=not show_progress)
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            decoded = pool.map(lambda it: decode_checked(it[0], sampling_rate, min_samples, max_samples), chunk)
            batch: dict[str, list] = {"input_values": [], "input_length": [], "labels": [], "name": []}
            for (utt, labels), result in zip(chunk, decoded):
                progress.update(1)
                if result.drop == "unreadable":
                    report.unreadable.append((utt.name, result.detail))
                    continue
                if result.drop is not None or result.audio is None:
                    getattr(report, result.drop or "unreadable").append(utt.name)
                    continue
                frames = conv_output_length(result.audio.shape[0], *conv)
                if frames < ctc_min_frames(labels):
                    report.too_short.append(utt.name)
                    continue
                batch["input_values"].append(result.audio)
                batch["input_length"].append(result.audio.shape[0])
                batch["labels"].append(labels)
                batch["name"].append(utt.name)
                report.kept += 1
                report.kept_seconds += result.audio.shape[0] / sampling_rate
            if batch["labels"]:
                yield batch
    progress.close()


def _to_record_batch(batch: dict[str, list]) -> pa.RecordBatch:
    """Columns of one chunk as Arrow arrays, without a Python loop over samples."""
    lengths = np.asarray(batch["input_length"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if offsets[-1] > MAX_CHUNK_SAMPLES:
        raise ValueError(
            f"{len(lengths)} utterances hold {offsets[-1]} samples, over one Arrow batch's 2**31; set max_duration"
        )
    offsets = offsets.astype(np.int32)
    values = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(batch["input_values"])))
    labels = pa.array(batch["labels"], type=pa.list_(pa.int64()))
    names = pa.array(batch["name"], type=pa.string())
    return pa.RecordBatch.from_arrays([values, pa.array(lengths), labels, names], schema=_SCHEMA)


def prepare_ctc_dataset(
    utterances: Sequence[Utterance],
    processor: Wav2Vec2Processor,
    config: HasConvGeometry,
    filters: CTCFilter | None = None,
    *,
    num_workers: int | None = None,
    cache_file: str | os.PathLike | None = None,
    show_progress: bool = True,
) -> tuple[datasets.Dataset, FilterReport]:
    """Decode, resample, normalise, tokenise and filter ``utterances`` into a training dataset.

    Args:
        utterances: from :mod:`hf_w2v2.data.sources`.
        processor: gives the tokenizer (labels) and the sampling rate.
        config: the model's config: its feature encoder (``conv_kernel``, ``conv_stride``) sets the
            receptive-field and CTC-length filters.
        filters: the transcript normaliser, duration limits and out-of-vocabulary policy
            (:class:`~hf_w2v2.data.ctc_filter.CTCFilter`; default: keep every utterance that can train).
        num_workers: decoding threads (default: the number of CPU cores, at most 8).
        cache_file: write the Arrow data there and memory-map it (for corpora larger than
            RAM: 1 h of 16 kHz audio is 230 MB); default: keep it in memory.
        show_progress: show a tqdm bar.

    Returns:
        The dataset (numpy format) and the :class:`FilterReport`, which is also logged.

    Raises:
        ValueError: no utterance survives the filters (the message holds the report).
    """
    import datasets

    sampling_rate = int(processor.feature_extractor.sampling_rate)
    filters = filters or CTCFilter()
    num_workers = num_workers or min(8, os.cpu_count() or 1)
    report = FilterReport(total=len(utterances))
    items = tokenize_transcripts(utterances, processor, filters, report)
    batches = (
        _to_record_batch(batch)
        for batch in _record_batches(items, sampling_rate, config, filters, num_workers, report, show_progress)
    )
    if cache_file is None:
        table = pa.Table.from_batches(list(batches), schema=_SCHEMA)
        dataset = datasets.Dataset(table)
    else:
        with pa.OSFile(os.fspath(cache_file), "wb") as sink, pa.ipc.new_stream(sink, _SCHEMA) as writer:
            for record_batch in batches:
                writer.write_batch(record_batch)
        dataset = datasets.Dataset.from_file(os.fspath(cache_file))
    log_filter_report(report)
    if report.kept == 0:
        raise ValueError(f"no utterance left after filtering: {report.format()}")
    return dataset.with_format("numpy"), report


def log_filter_report(report: FilterReport) -> None:
    """Log what filtering dropped (unreadable files by name and reason) and the report's summary line."""
    if report.unreadable:
        listed = "\n  ".join(f"{name} ({reason})" for name, reason in report.unreadable)
        logger.warning("skipped %d unreadable audio file(s):\n  %s", len(report.unreadable), listed)
    if report.empty_transcript:
        count = len(report.empty_transcript)
        logger.warning("skipped %d utterance(s) with an empty transcript after normalisation", count)
    logger.info(report.format())
