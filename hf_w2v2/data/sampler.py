"""Length-grouped random order for training batches, a pure function of (seed, epoch).

Clips of similar length share a batch (less padding, less wasted compute), the order is
still random, and it is reproducible from the seed and the epoch alone, so a run resumed
mid-epoch sees exactly the batches the uninterrupted run would have seen. Used by both
trainers.
"""

from __future__ import annotations

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
