"""Streamed training sets: ``datasets.IterableDataset`` over shards, for fine-tuning and pre-training.

Shape legend: T samples (16 kHz), L labels.

Pipeline (one per DataLoader worker of each rank)::

    shards of this rank and worker  ->  raw items (encoded audio or a path, text)
      -> shuffle buffer (datasets' ``shuffle(seed, buffer_size)``: shard order, then a buffer of raw items)
      -> decode, resample to 16 kHz, then
           fine-tuning: normalise, tokenise, filter exactly as :mod:`hf_w2v2.data.prepare`
           pre-training: drop clips under ``min_seconds``, random crop as :class:`UnlabeledAudioDataset`

**Splitting.** The shards are dealt into one *stream* per reader (ranks x DataLoader workers,
:func:`reader_count`), and the streams are the generator's ``gen_kwargs`` list, so ``n_shards`` is the
number of readers: accelerate gives each rank ``dataset.shard(num_processes, rank)`` (with
``dispatch_batches=False``, see :func:`hf_w2v2.training.streaming.configure_streaming`), and datasets
gives each DataLoader worker of a rank one of that rank's streams. Every reader reads its own shards.

**Never running dry.** Each reader repeats its shards forever, reshuffled per pass (a *pass* is a
full read of its shards; the crops of pre-training are seeded by seed, pass and item name): no
rank's stream can end before another's, so every rank stops together at ``max_steps`` (the Trainer's
only stopping rule for a stream), however unequal the shards. A reader whose shards give no item in
a pass raises, and so does one of whose first 10 000 items none is usable, instead of spinning.

**Resuming.** The order is a pure function of (seed, shards, ranks, workers, batch size): the Trainer
resumes an iterable loader by reading and discarding the batches already trained on, which lands on
the exact next sample (tested with workers and a shuffle buffer). The cost is re-reading them.

**Decoding** goes through :mod:`hf_w2v2.data.audio` (soundfile + soxr); datasets never decodes an
``Audio`` feature (it would need torchcodec). Drops are counted per worker and pass and logged
when a pass ends (a :class:`~hf_w2v2.data.prepare.FilterReport` line).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.ctc_filter import CTCFilter, HasConvGeometry
from hf_w2v2.data.prepare import (
    FilterReport,
    ctc_min_frames,
    decode_checked,
    decode_utterance,
    tokenize_transcripts,
)
from hf_w2v2.data.shards import ShardStats
from hf_w2v2.data.sources import Utterance
from hf_w2v2.data.stream_sources import Shard, read_shard
from hf_w2v2.models.lengths import conv_output_length

if TYPE_CHECKING:
    import datasets
    from transformers import Wav2Vec2Processor

logger = logging.getLogger(__name__)

RAW_COLUMNS = ["audio_bytes", "path", "text", "pass"]  # dropped once an item is decoded
EMPTY_ITEMS = 10_000  # items read without one usable before a reader gives up (all filtered out: spinning)


def _where() -> str:
    """``rank R worker W`` of the calling process, for log lines."""
    info = torch.utils.data.get_worker_info()
    rank = os.environ.get("RANK", "0")
    return f"rank {rank} worker {info.id if info is not None else 0}"


def split_streams(shards: Sequence[Shard], count: int) -> list[dict]:
    """``shards`` dealt round-robin into ``count`` reader streams ``{"id", "shards"}``, one per rank and worker.

    Raises:
        ValueError: fewer shards than streams (a reader would have nothing to read).
    """
    if count < 1:
        raise ValueError(f"the number of streams must be >= 1, got {count}")
    if len(shards) < count:
        raise ValueError(
            f"{len(shards)} shard(s) for {count} readers (ranks x DataLoader workers): every reader needs its own "
            "shards; make more, smaller shards (hf-w2v2 make-shards --per_shard N) or use fewer workers"
        )
    return [{"id": index, "shards": list(shards[index::count])} for index in range(count)]


def repeat_shards(
    streams: list[dict], seed: int, text_column: str, audio_column: str | None, repeat: bool
) -> Iterator[dict]:
    """Raw items of this reader's shards, pass after pass, the shard order reshuffled per pass.

    datasets hands each reader its share of ``streams`` (one, when there are as many streams as ranks x
    workers; several are read as one). Each item gets ``"pass"``, the pass it was read in (counted from
    0 at each start of iteration, so a resumed run counts as the uninterrupted one did). Bad shards are
    logged and counted each pass; a pass that reads nothing raises (the stream would spin forever).
    """
    shards = [shard for stream in streams for shard in stream["shards"]]
    ident = ",".join(str(stream["id"]) for stream in streams)
    for number in itertools.count() if repeat else range(1):
        order = list(shards)
        random.Random(f"{seed}:{ident}:{number}").shuffle(order)  # str seeds are the same in every process
        stats = ShardStats()
        for shard in order:
            for item in read_shard(shard, stats, text_column, audio_column):
                yield {**item, "pass": number}
        if stats.bad_shards or stats.incomplete:
            logger.warning("stream %s pass %d: %s", _where(), number, stats.format())
        if stats.items == 0:
            names = ", ".join(s["path"] for s in shards[:5])
            raise RuntimeError(f"stream {_where()}: no item could be read from its {len(shards)} shard(s) ({names})")


class PassReport:
    """Drop counts of one reader, logged and reset when items of a new pass come; fails when nothing is usable.

    The shuffle buffer mixes passes (the first items decoded may come from pass 30 of a small stream), so
    a line covers the items decoded since the previous one, labelled with the pass they started in.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.current = -1
        self.report = FilterReport()
        self.seen = 0
        self.kept_ever = 0

    def see(self, item: dict) -> FilterReport:
        number = int(item["pass"])
        if number > self.current:
            if self.current >= 0:
                logger.info("stream %s (%s) pass %d: %s", _where(), self.what, self.current, self.report.format())
            self.current, self.report = number, FilterReport()
        self.seen += 1
        if self.kept_ever == 0 and self.seen > EMPTY_ITEMS:
            raise RuntimeError(
                f"stream {_where()} ({self.what}): none of the first {EMPTY_ITEMS} items read is usable; "
                f"last filter counts: {self.report.format()}"
            )
        self.report.total += 1
        return self.report

    def kept(self, seconds: float) -> None:
        self.kept_ever += 1
        self.report.kept += 1
        self.report.kept_seconds += seconds


def _utterance(item: dict) -> Utterance:
    return Utterance(id=item["name"], text=item["text"], path=item["path"], audio_bytes=item["audio_bytes"])


class CTCDecoder:
    """Raw item -> ``{"input_values", "input_length", "labels", "name", "keep"}``, filtered by a
    :class:`~hf_w2v2.data.ctc_filter.CTCFilter` exactly as prepare.py filters."""

    def __init__(self, processor: Wav2Vec2Processor, config: HasConvGeometry, filters: CTCFilter) -> None:
        self.processor, self.filters = processor, filters
        self.sampling_rate = int(processor.feature_extractor.sampling_rate)
        self.conv = (list(config.conv_kernel), list(config.conv_stride))
        self.min_samples, self.max_samples = filters.sample_bounds(self.sampling_rate, config)
        self.passes = PassReport("fine-tuning")

    def __call__(self, item: dict) -> dict:
        report = self.passes.see(item)
        dropped = {"input_values": np.zeros(0, np.float32), "input_length": 0, "labels": [], "keep": False}
        utt = _utterance(item)
        labelled = tokenize_transcripts([utt], self.processor, self.filters, report)
        if not labelled:
            return dropped
        labels = labelled[0][1]
        decoded = decode_checked(utt, self.sampling_rate, self.min_samples, self.max_samples)
        if decoded.drop == "unreadable":
            report.unreadable.append((utt.name, decoded.detail))
            logger.warning("stream: skipping unreadable audio %s (%s)", utt.name, decoded.detail)
            return dropped
        if decoded.drop is not None or decoded.audio is None:
            getattr(report, decoded.drop or "too_short").append(utt.name)  # too_short or too_long
            return dropped
        if conv_output_length(decoded.audio.shape[0], *self.conv) < ctc_min_frames(labels):
            report.too_short.append(utt.name)
            return dropped
        self.passes.kept(decoded.audio.shape[0] / self.sampling_rate)
        length = int(decoded.audio.shape[0])
        return {"input_values": decoded.audio, "input_length": length, "labels": labels, "keep": True}


@dataclass(frozen=True)
class StreamReading:
    """How the readers of a stream walk their shards (see the module doc)."""

    seed: int = 0
    """Shard order and shuffle buffer (datasets adds the epoch it is given by ``set_epoch``)."""
    shuffle_buffer: int = 1000
    """Raw items held for shuffling (encoded audio or paths, not decoded waves); 1 or less: no shuffling."""
    text_column: str = "text"
    """Transcript column of the shards' manifests."""
    audio_column: str | None = None
    """Audio column of the shards' manifests (``None``: auto-detected)."""
    repeat: bool = True
    """Read the shards pass after pass forever (training); False: one pass."""
    streams: int = 1
    """Readers in all, ranks x max(1, DataLoader workers) (see :func:`reader_count`): each reads its own
    shards forever. datasets calls the generator once per entry of a ``gen_kwargs`` list and would never
    leave the first of several endless ones, hence one entry per reader."""


def stream_dataset(shards: Sequence[Shard], decode: Any, reading: StreamReading) -> datasets.IterableDataset:
    """``shards`` -> raw items -> shuffle buffer -> ``decode`` -> items whose ``keep`` is true (see the module doc).

    Args:
        shards: from :func:`hf_w2v2.data.stream_sources.find_all_shards`, dealt into ``reading.streams``
            readers (:func:`split_streams`), so ranks and workers split them.
        decode: raw item -> decoded item with a boolean ``keep`` (e.g. :class:`CTCDecoder`).
        reading: seed, shuffle buffer, manifest columns, repetition and reader count.
    """
    import datasets

    raw = datasets.IterableDataset.from_generator(
        repeat_shards,
        gen_kwargs={
            "streams": split_streams(shards, reading.streams),
            "seed": reading.seed,
            "text_column": reading.text_column,
            "audio_column": reading.audio_column,
            "repeat": reading.repeat,
        },
    )
    buffer = reading.shuffle_buffer
    mixed = raw.shuffle(seed=reading.seed, buffer_size=buffer) if buffer > 1 else raw
    decoded = mixed.map(decode, remove_columns=RAW_COLUMNS)
    return decoded.filter(lambda item: item["keep"]).remove_columns(["keep"])


def ctc_stream(
    shards: Sequence[Shard],
    processor: Wav2Vec2Processor,
    config: HasConvGeometry,
    filters: CTCFilter | None = None,
    reading: StreamReading | None = None,
) -> datasets.IterableDataset:
    """A streamed CTC training set: items as :func:`hf_w2v2.data.prepare.prepare_ctc_dataset` makes them
    (``input_values`` normalised at 16 kHz, ``input_length``, ``labels``, ``name``), filtered the same way
    (``filters``, default: keep all that can train) and read as ``reading`` says (default: seed 0, a
    1000-item shuffle buffer, one reader, forever)."""
    decoder = CTCDecoder(processor, config, filters or CTCFilter())
    return stream_dataset(shards, decoder, reading or StreamReading())


def reader_count(world_size: int, num_workers: int) -> int:
    """Readers of a training stream: one per DataLoader worker of each rank (one per rank without workers)."""
    return max(1, world_size) * max(1, num_workers)


def decode_raw_audio(item: dict) -> np.ndarray:
    """16 kHz mono float32 ``(T,)`` of a raw item (bytes or path); raises :class:`AudioLoadError`."""
    return decode_utterance(_utterance(item), TARGET_SAMPLING_RATE)


def stable_index(name: str) -> int:
    """A per-item integer that is the same in every process (``hash(str)`` is salted per process)."""
    return zlib.crc32(name.encode("utf-8"))
