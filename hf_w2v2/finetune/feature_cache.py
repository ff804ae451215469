"""Frozen conv blocks run once per utterance instead of once per step (``--cache_frozen_features``).

Shape legend: B batch, T samples, C channels, F_k frames after the first k conv blocks.

When the first k blocks of the feature encoder are frozen, their output for an utterance
never changes during fine-tuning, yet they are the most expensive part of the encoder
(they run at 3,200 / 1,600 / 800 frames per second). :class:`FrozenFeatureCache` computes
that output once for every item of the training (and evaluation) datasets and keeps it in
memory; :class:`CachedFeatureCollator` then pads cached outputs into a batch that
``Wav2Vec2ForCTC`` takes as ``prefix_features``.

It is exact: a layer-norm encoder runs batches of similar-length utterances (its norms
act on each frame, and the unpadded convolutions give valid frames that never see the
padding); a group-norm encoder runs each utterance alone (its first norm is over time).
Both run under the same autocast dtype as training and store that dtype (which is what
the next block's convolution would cast it to). Valid frames therefore match an uncached
forward pass; padded frames are masked as usual. Memory: ``C_k * F_k`` values per
utterance, e.g. 128 channels at 800 frames/s in bf16 is 205 KB per second of audio
(1.1 GB for 1.5 h); after all 7 blocks (50 frames/s) 13 KB.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.data.collator import DataCollatorCTCWithPadding

if TYPE_CHECKING:
    import datasets

    from hf_w2v2.models.feature_encoder import FeatureEncoder

logger = logging.getLogger(__name__)

KEY_COLUMN = "cache_key"
"""Dataset column holding each item's key in the cache."""

DEFAULT_BATCH_SIZE = 8
"""Items per forward pass when caching a frame-local (layer-norm) encoder."""


@dataclass
class FrozenFeatureCache:
    """Outputs ``(C_k, F_k)`` of the first ``num_layers`` conv blocks, by item key."""

    num_layers: int
    features: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.features.values())

    def add(
        self,
        encoder: FeatureEncoder,
        dataset: datasets.Dataset,
        first_key: int = 0,
        device: torch.device | str = "cpu",
        autocast_dtype: torch.dtype | None = None,
        show_progress: bool = True,
        desc: str = "caching frozen conv blocks",
        batch_size: int | None = None,
    ) -> datasets.Dataset:
        """Compute the prefix for every item of ``dataset`` (``input_values`` column).

        ``batch_size`` items of similar length run together (default 8) when the encoder's norms
        act on each frame alone (layer norm): the valid frames of a right-padded batch are those
        of each item run alone, and each item keeps only its own frames. A group-norm encoder
        normalises over time, so padding would change its outputs: items run one at a time
        (the default there; a larger ``batch_size`` is refused).

        Returns the dataset with a ``cache_key`` column (``first_key``, ``first_key + 1``, ...)
        and without ``input_values`` in its output format, so batches no longer read the audio.
        """
        frozen = encoder.num_frozen_layers
        if self.num_layers > frozen:
            raise ValueError(f"cannot cache {self.num_layers} conv blocks: only the first {frozen} are frozen")
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE if encoder.frame_local else 1
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > 1 and not encoder.frame_local:
            raise ValueError(
                "a group-norm feature encoder normalises over time, so padding changes its outputs: "
                "cache it with batch_size=1"
            )
        device = torch.device(device)
        autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
        store_dtype = autocast_dtype or torch.float32
        audio_only = dataset.with_format("numpy", columns=["input_values"])
        if "input_length" in dataset.column_names:  # samples per item
            lengths = [int(n) for n in dataset["input_length"]]
        else:
            lengths = [len(audio_only[i]["input_values"]) for i in range(len(dataset))]
        order = sorted(range(len(dataset)), key=lambda i: lengths[i])  # similar lengths share a batch
        was_training = encoder.training
        encoder.eval()  # conv blocks have no dropout; eval() only guards against subclass surprises
        try:
            with (
                torch.no_grad(),
                autocast,
                tqdm(total=len(dataset), desc=desc, disable=not show_progress, unit="utt") as bar,
            ):
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    audio = torch.zeros(len(rows), max(lengths[i] for i in rows), device=device)  # (B, T_max)
                    for row, i in enumerate(rows):
                        audio[row, : lengths[i]] = torch.as_tensor(audio_only[i]["input_values"], dtype=torch.float32)
                    prefix = encoder.prefix(audio, self.num_layers)  # (B, C_k, F_k max)
                    for row, i in enumerate(rows):
                        frames = int(encoder.output_frames(lengths[i], self.num_layers))
                        own = prefix[row, :, :frames]  # (C_k, F_k) of this item, frames-major in memory
                        # copy=True: one fresh tensor (a view would keep the whole batch's storage alive);
                        # it keeps the frames-major strides, which the collator copies fastest.
                        self.features[first_key + i] = own.to(device="cpu", dtype=store_dtype, copy=True)
                    bar.update(len(rows))
        finally:
            encoder.train(was_training)
        keys = list(range(first_key, first_key + len(dataset)))
        keyed = dataset.add_column(KEY_COLUMN, keys) if KEY_COLUMN not in dataset.column_names else dataset
        columns = [c for c in keyed.column_names if c != "input_values"]
        return keyed.with_format("numpy", columns=columns)


@dataclass
class CachedFeatureCollator:
    """Batches items by their cached prefix; items without one fall back to ``base`` (audio).

    Returns ``prefix_features`` ``(B, C_k, F_max)`` (zero-padded), ``prefix_layers`` (int),
    ``attention_mask`` ``(B, T_max)`` built from ``input_length`` when ``base`` returns masks,
    and ``labels`` ``(B, L)`` padded with -100.
    """

    base: DataCollatorCTCWithPadding
    cache: FrozenFeatureCache

    def _cached(self, item: Mapping[str, Any]) -> torch.Tensor | None:
        key = item.get(KEY_COLUMN)
        return None if key is None else self.cache.features.get(int(key))

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not features:
            raise ValueError("cannot collate an empty list of features")
        prefixes = [self._cached(item) for item in features]
        if any(p is None for p in prefixes):
            if all("input_values" in item for item in features):
                return self.base(features)
            raise ValueError("items have neither a cached prefix nor input_values")
        width = max(p.shape[1] for p in prefixes)
        # Frames-major storage, the encoder's own layout: its transpose back is contiguous.
        frames_major = prefixes[0].new_zeros(len(prefixes), width, prefixes[0].shape[0])  # (B, F_max, C_k)
        for row, prefix in enumerate(prefixes):
            frames_major[row, : prefix.shape[1]] = prefix.T  # (C_k, F_k) -> (F_k, C_k)
        batch_features = frames_major.transpose(1, 2)  # (B, F_max, C_k) -> (B, C_k, F_max), a view
        batch: dict[str, Any] = {"prefix_features": batch_features, "prefix_layers": self.cache.num_layers}
        if self.base.return_attention_mask:
            lengths = np.array([int(item["input_length"]) for item in features])  # (B,) samples
            batch["attention_mask"] = self.base.attention_mask(lengths, int(lengths.max()))  # (B, T_max)
        if "labels" in features[0]:
            batch["labels"] = self.base.pad_labels(features)  # (B, L)
        return batch
