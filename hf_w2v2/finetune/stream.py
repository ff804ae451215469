"""``--train_loading stream`` for CTC fine-tuning: the training split streamed from shards.

The vocabulary is built (when no tokenizer is given) from the transcripts of the shards, read
without their audio (:func:`hf_w2v2.data.stream_sources.shard_texts`). Evaluation sets stay eager.
Filter counts of a stream are logged by each DataLoader worker at the end of each pass over its
shards; the data report says so (:class:`StreamReport`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainingArguments, Wav2Vec2Processor

from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.prepare import FilterReport
from hf_w2v2.data.stream import StreamReading, ctc_stream, reader_count
from hf_w2v2.data.stream_sources import Shard, find_all_shards, shard_texts
from hf_w2v2.finetune.arguments import DataArguments
from hf_w2v2.finetune.data import Split
from hf_w2v2.training.arguments import ModelArguments
from hf_w2v2.training.streaming import configure_streaming

logger = logging.getLogger(__name__)


@dataclass
class StreamReport(FilterReport):
    """The report of a streamed split: its counts are per worker and pass, in the training log."""

    shards: int = 0
    sources: str = ""

    def format(self) -> str:
        return (
            f"streamed from {self.shards} shard(s) of {self.sources}; utterances are filtered as they are read "
            "(per-worker counts at the end of each pass, in the training log)"
        )


def stream_shards(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
) -> tuple[list[Shard], list[str]]:
    """The training shards and their transcripts (for the vocabulary); checks the arguments first."""
    configure_streaming(training_args, data_args.max_batch_seconds)
    if model_args.cache_frozen_features:
        raise ValueError(
            "--cache_frozen_features needs the whole training set up front; not with --train_loading stream"
        )
    if data_args.max_train_samples is not None:
        raise ValueError("--max_train_samples is not supported with --train_loading stream (make smaller shards)")
    if not data_args.train_data:
        return [], []
    sources = [data_args.train_data, *data_args.extra_train_data]
    shards = find_all_shards(sources, True, data_args.text_column, data_args.audio_column)
    start = time.monotonic()
    texts = shard_texts(shards, data_args.text_column, data_args.audio_column)
    logger.info("stream: %d shard(s), %d transcripts read in %.1f s", len(shards), len(texts), time.monotonic() - start)
    return shards, texts


def stream_split(
    shards: list[Shard],
    processor: Wav2Vec2Processor,
    config: Any,
    filters: CTCFilter,
    data_args: DataArguments,
    training_args: TrainingArguments,
) -> Split:
    """The streamed training :class:`Split` (its ``names`` are unknown, its report says why it has no counts)."""
    world_size, num_workers = training_args.world_size, training_args.dataloader_num_workers
    reading = StreamReading(
        seed=training_args.seed,
        shuffle_buffer=data_args.shuffle_buffer,
        text_column=data_args.text_column,
        audio_column=data_args.audio_column,
        streams=reader_count(world_size, num_workers),
    )
    dataset = ctc_stream(shards, processor, config, filters, reading)
    sources = ", ".join([str(data_args.train_data), *data_args.extra_train_data])
    return Split(name="train", dataset=dataset, names=[], report=StreamReport(shards=len(shards), sources=sources))
