"""Frozen conv blocks run once per utterance instead of once per step (``--cache_frozen_features``).

Shape legend: B batch, T samples, C channels, F_k frames after the first k conv blocks.

When the first k blocks of the feature encoder are frozen, their output for an utterance
never changes during fine-tuning, yet they are the most expensive part of the encoder
(they run at 3,200 / 1,600 / 800 frames per second). :class:`FrozenFeatureCache` computes
that output once for every item of the training (and evaluation) datasets and keeps it in
memory; :class:`CachedFeatureCollator` then pads cached outputs into a batch that
``Wav2Vec2ForCTC`` takes as ``prefix_features``.

It is exact: each utterance is run alone (no padding can leak into a group-norm
encoder), under the same autocast dtype as training, and stored in that dtype (which is
what the next block's convolution would cast it to). Valid frames therefore match an
uncached forward pass; padded frames are masked as usual. Memory: ``C_k * F_k`` values per
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

    from hf_w2v2.feature_encoder import FeatureEncoder

logger = logging.getLogger(__name__)

KEY_COLUMN = "cache_key"
"""Dataset column holding each item's key in the cache."""


@dataclass
class FrozenFeatureCache:
    """Outputs ``(C_k, F_k)`` of the first ``num_layers`` conv blocks, by item key."""

    num_layers: int
    features: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.features.values())

    def add(self, encoder: FeatureEncoder, dataset: datasets.Dataset, first_key: int = 0,
            device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None,
            show_progress: bool = True, desc: str = "caching frozen conv blocks") -> datasets.Dataset:
        """Compute the prefix for every item of ``dataset`` (``input_values`` column, one item at a time).

        Returns the dataset with a ``cache_key`` column (``first_key``, ``first_key + 1``, ...)
        and without ``input_values`` in its output format, so batches no longer read the audio.
        """
        frozen = encoder.num_frozen_layers
        if self.num_layers > frozen:
            raise ValueError(f"cannot cache {self.num_layers} conv blocks: only the first {frozen} are frozen")
        device = torch.device(device)
        autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                    else nullcontext())
        store_dtype = autocast_dtype or torch.float32
        was_training = encoder.training
        encoder.eval()  # conv blocks have no dropout; eval() only guards against subclass surprises
        keys = list(range(first_key, first_key + len(dataset)))
        try:
            with torch.no_grad(), autocast:
                audio_only = dataset.with_format("numpy", columns=["input_values"])
                for key, item in zip(keys, tqdm(audio_only, desc=desc, disable=not show_progress,
                                                total=len(dataset), unit="utt")):
                    audio = torch.as_tensor(item["input_values"], dtype=torch.float32, device=device)[None]  # (1, T)
                    prefix = encoder.prefix(audio, self.num_layers)[0]  # (1, C_k, F_k) -> (C_k, F_k)
                    self.features[key] = prefix.to(device="cpu", dtype=store_dtype).contiguous()
        finally:
            encoder.train(was_training)
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
        batch_features = prefixes[0].new_zeros(len(prefixes), prefixes[0].shape[0], width)  # (B, C_k, F_max)
        for row, prefix in enumerate(prefixes):
            batch_features[row, :, : prefix.shape[1]] = prefix
        batch: dict[str, Any] = {"prefix_features": batch_features, "prefix_layers": self.cache.num_layers}
        if self.base.return_attention_mask:
            lengths = np.array([int(item["input_length"]) for item in features])  # (B,) samples
            batch["attention_mask"] = self.base.attention_mask(lengths, int(lengths.max()))  # (B, T_max)
        if "labels" in features[0]:
            batch["labels"] = self.base.pad_labels(features)  # (B, L)
        return batch
