"""``--train_loading stream`` for pre-training: unlabeled audio streamed from shards, cropped as in
:class:`~hf_w2v2.pretrain.data.UnlabeledAudioDataset`.

Shape legend: T samples (16 kHz).

Sources are any of :func:`hf_w2v2.data.stream_sources.find_shards` (tar shards, JSONL/Parquet,
audiofolders, folders or lists of audio files cut into row slices); transcripts are ignored. Each
clip is decoded to 16 kHz mono, dropped (and counted) when unreadable or shorter than
``min_seconds``, and cut to a window of ``max_seconds`` at an offset drawn from (seed, pass, item
name) with :func:`~hf_w2v2.pretrain.data.crop_offset`: a resumed run draws the same crops.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from transformers import TrainingArguments

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, AudioLoadError
from hf_w2v2.data.stream import (
    PassReport,
    StreamReading,
    decode_raw_audio,
    reader_count,
    stable_index,
    stream_dataset,
)
from hf_w2v2.data.stream_sources import find_all_shards
from hf_w2v2.pretrain.arguments import DataArguments
from hf_w2v2.pretrain.data import crop_offset
from hf_w2v2.training.streaming import configure_streaming

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


class CropDecoder:
    """Raw item -> ``{"input_values": (<= max_samples,) float32, "name", "keep"}``."""

    def __init__(self, min_seconds: float, max_seconds: float | None, seed: int) -> None:
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.min_samples = round(min_seconds * TARGET_SAMPLING_RATE)
        self.max_samples = None if max_seconds is None else int(max_seconds * TARGET_SAMPLING_RATE)
        self.seed = seed
        self.passes = PassReport("pre-training")

    def __call__(self, item: dict) -> dict:
        report = self.passes.see(item)
        try:
            audio = decode_raw_audio(item)  # (T,)
        except AudioLoadError as err:
            report.unreadable.append((item["name"], str(err)))
            logger.warning("stream: skipping unreadable audio: %s", err)
            return {"input_values": np.zeros(0, np.float32), "keep": False}
        if audio.shape[0] < max(self.min_samples, 1):
            report.too_short.append(item["name"])
            return {"input_values": np.zeros(0, np.float32), "keep": False}
        if self.max_samples is not None:
            start = crop_offset(
                audio.shape[0],
                self.max_samples,
                seed=self.seed,
                epoch=int(item["pass"]),
                index=stable_index(item["name"]),
            )
            audio = audio[start : start + self.max_samples]  # (T,) -> (<= max_samples,)
        self.passes.kept(audio.shape[0] / TARGET_SAMPLING_RATE)
        return {"input_values": audio, "keep": True}


def pretrain_stream(
    sources: list[str], data: DataArguments, training_args: TrainingArguments
) -> datasets.IterableDataset:
    """The streamed training set of ``run_pretraining``; sets ``training_args`` for streaming first."""
    configure_streaming(training_args, data.max_batch_seconds)
    if data.max_train_files is not None:
        raise ValueError("--max_train_files is not supported with --train_loading stream (make smaller shards)")
    shards = find_all_shards(sources, labelled=False)
    logger.info("streaming pre-training audio from %d shard(s) of %s", len(shards), ", ".join(sources))
    decoder = CropDecoder(data.min_seconds, data.max_seconds, training_args.seed)
    readers = reader_count(training_args.world_size, training_args.dataloader_num_workers)
    reading = StreamReading(seed=training_args.seed, shuffle_buffer=data.shuffle_buffer, streams=readers)
    return stream_dataset(shards, decoder, reading)
