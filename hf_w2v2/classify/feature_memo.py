"""The frozen feature encoder run once per clip instead of once per step (``--cache_frozen_features``).

Shape legend: B batch, T samples, C channels, F frames.

When the whole conv feature encoder is frozen it is a pure function of its input row, yet it
costs most of a CPU training step (three quarters for the small model on 0.5 s clips). Here its
``forward`` is wrapped (on the instance: weights, state-dict keys and the model's forward are
untouched) to remember each input row's output, keyed by a hash of the row's bytes and shape;
a row seen before is not recomputed. It is exact because the key is the whole padded row: a
clip padded to another width is another row. :class:`BucketBatchSampler` makes the widths stable
(each clip is always batched with clips of its length bucket and padded to the bucket's bound),
so from the second epoch on every row is a hit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)


class FeatureMemo:
    """Remembers (C, F) outputs of a frozen feature encoder by input row; counts hits and misses."""

    def __init__(self, encoder: nn.Module) -> None:
        self.encoder = encoder
        self.original_forward = encoder.forward
        self.rows: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(row: torch.Tensor) -> bytes:
        data = row.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        return hashlib.blake2b(data, digest_size=16).digest() + str(tuple(row.shape)).encode()

    def forward(self, audio: torch.Tensor, start_layer: int = 0) -> torch.Tensor:
        """Same contract as the encoder's forward: (B, T) -> (B, C, F)."""
        if start_layer != 0 or any(p.requires_grad for p in self.encoder.parameters()):
            return self.original_forward(audio, start_layer)
        keys = [self.key(row) for row in audio]
        missing = [i for i, k in enumerate(keys) if k not in self.rows]
        if missing:
            with torch.no_grad():
                out = self.original_forward(audio[missing])  # (B', C, F)
            for i, row in zip(missing, out):
                self.rows[keys[i]] = row.detach().clone()
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        return torch.stack([self.rows[k] for k in keys]).to(audio.device)  # (B, C, F)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.rows.values())


def memoize_frozen_encoder(model: Any) -> FeatureMemo | None:
    """Wrap the feature encoder of ``model`` when all its conv blocks are frozen; None (logged) otherwise."""
    encoder = model.base_encoder().feature_extractor
    if encoder.num_frozen_layers != len(encoder.conv_layers):
        logger.warning("cache_frozen_features: the feature encoder is not (wholly) frozen; nothing is cached")
        return None
    memo = FeatureMemo(encoder)
    encoder.forward = memo.forward  # instance attribute: the class, weights and state dict are unchanged
    return memo


def release(memo: FeatureMemo | None) -> None:
    """Put the encoder's own forward back and drop the remembered rows."""
    if memo is not None:
        vars(memo.encoder).pop("forward", None)  # the class's forward again
        memo.rows.clear()


class BucketBatchSampler:
    """Batches of clips from one length bucket ((k-1) S, k S] samples, in a new random order every epoch.

    With the collator padding to a multiple of S, every clip is always padded to the same width.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, bucket_samples: int, seed: int = 0) -> None:
        if batch_size < 1 or bucket_samples < 1:
            raise ValueError(f"batch_size and bucket_samples must be positive, got {batch_size}, {bucket_samples}")
        self.buckets: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            self.buckets.setdefault(math.ceil(length / bucket_samples), []).append(index)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        out = []
        for _, members in sorted(self.buckets.items()):
            members = members[:]
            rng.shuffle(members)
            out += [members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return sum(math.ceil(len(m) / self.batch_size) for m in self.buckets.values())
