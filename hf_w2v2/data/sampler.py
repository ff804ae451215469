"""Length-grouped random order for training batches, a pure function of (seed, epoch).

Clips of similar length share a batch (less padding, less wasted compute), the order is
still random, and it is reproducible from the seed and the epoch alone, so a run resumed
mid-epoch sees exactly the batches the uninterrupted run would have seen. Used by both
trainers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch

MEGABATCH_FACTOR = 50  # batches shuffled together before sorting by length (as transformers' LengthGroupedSampler)


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


def check_fits(lengths: Sequence[int], max_batch_samples: int, sampling_rate: int = 16_000) -> None:
    """Refuse a batch budget that the longest item does not fit in (before any training work)."""
    longest = max(lengths, default=0)
    if longest > max_batch_samples:
        raise ValueError(
            f"max_batch_seconds={max_batch_samples / sampling_rate:g} is shorter than the longest kept clip "
            f"({longest / sampling_rate:.2f} s): raise max_batch_seconds or lower max_duration / max_seconds"
        )


def duration_batches(
    lengths: Sequence[int], max_batch_samples: int, generator: torch.Generator, *, longest_first: int = 1
) -> list[list[int]]:
    """Batches of at most ``max_batch_samples`` padded samples (items x longest item), length-bucketed.

    Shuffle, cut into megabatches of ``MEGABATCH_FACTOR * 8`` items, sort each by length
    (longest first) and fill batches greedily while ``len(batch) * longest <= max_batch_samples``;
    then shuffle the batches and move the ``longest_first`` batches holding the longest clips (ties:
    the most padded samples) to the front, so that an out-of-memory error shows at the first step
    (on every rank, with ``longest_first`` = the number of ranks). A pure function of its arguments: every rank that
    calls it with the same (seed, epoch) generator gets the same batches.

    Raises:
        ValueError: an item is longer than ``max_batch_samples`` (it fits in no batch).
    """
    check_fits(lengths, max_batch_samples)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = MEGABATCH_FACTOR * 8
    batches: list[list[int]] = []
    for start in range(0, len(order), size):
        batch: list[int] = []
        for j in sorted(order[start : start + size], key=lambda j: -lengths[j]):
            if batch and (len(batch) + 1) * lengths[batch[0]] > max_batch_samples:
                batches.append(batch)
                batch = []
            batch.append(j)
        batches.append(batch)
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    # Sorted batches: item 0 is the longest. Attention memory grows with the square of it.
    weight = lambda b: (lengths[batches[b][0]], len(batches[b]) * lengths[batches[b][0]])
    heaviest = sorted(range(len(batches)), key=weight, reverse=True)[:longest_first]
    rest = set(range(len(batches))) - set(heaviest)
    return [batches[b] for b in heaviest] + [batches[b] for b in sorted(rest)]


class DurationBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batch sampler of :func:`duration_batches`: batches by audio seconds, reproducible from (seed, epoch).

    Every rank builds the same list of batches; accelerate then gives each rank its share of
    them (``BatchSamplerShard``). ``num_replicas`` batches of the most padded audio go first.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_batch_samples: int,
        *,
        seed: int = 0,
        num_replicas: int = 1,
        dataset: object | None = None,
    ) -> None:
        self.lengths = list(lengths)
        self.max_batch_samples = max_batch_samples
        self.seed = seed
        self.num_replicas = num_replicas
        self.dataset = dataset
        self.epoch = 0
        self._batches = self._draw()  # also checks that every item fits
        # accelerate forwards set_epoch to `batch_sampler.sampler` of a sharded (multi-rank) batch sampler.
        self.sampler = self

    def _draw(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return duration_batches(self.lengths, self.max_batch_samples, generator, longest_first=self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._batches = self._draw()
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches)


class BucketBatchSampler:
    """Batches of clips from one length bucket ((k-1) S, k S] samples, in a new random order every epoch.

    With the collator padding to a multiple of S, every clip is always padded to the same width (so a
    memo of the frozen feature encoder keyed by the padded row hits from the second epoch on).
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
