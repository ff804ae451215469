"""The one DataLoader policy of both trainers, for loaders they build themselves.

The Trainer builds its own loaders; hf_w2v2's trainers replace them where the order matters
(length-grouped training batches as a function of seed and epoch, evaluation in dataset
order). Pinned memory only helps copies to a CUDA device; persistent workers only exist
with workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import Trainer


def build_loader(trainer: Trainer, dataset: Dataset, batch_size: int, sampler: Iterable[int] | Any) -> DataLoader:
    """A loader of ``dataset`` in ``sampler``'s order with ``trainer``'s collator and worker settings."""
    args = trainer.args
    workers = args.dataloader_num_workers
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=trainer.data_collator,
        num_workers=workers,
        pin_memory=args.dataloader_pin_memory and torch.cuda.is_available(),
        drop_last=args.dataloader_drop_last,
        persistent_workers=args.dataloader_persistent_workers and workers > 0,
    )
    return trainer.accelerator.prepare(loader)
