"""The one DataLoader policy of every job's trainer, for loaders they build themselves.

The Trainer builds its own loaders; hf_w2v2's trainers replace them where the order matters
(length-grouped training batches as a function of seed and epoch, evaluation in dataset
order). Pinned memory only helps copies to a CUDA device; persistent workers only exist
with workers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import field
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:  # the argument classes import this module: `--help` need not load the Trainer stack
    from transformers import Trainer

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.sampler import DurationBatchSampler


def _worker_options(trainer: Trainer) -> dict[str, Any]:
    """The DataLoader options every loader takes from ``trainer.args``: collator, workers, pinning."""
    args = trainer.args
    workers = args.dataloader_num_workers
    return {
        "collate_fn": trainer.data_collator,
        "num_workers": workers,
        # Workers start from a clean forkserver, not a fork of this process: a 2-process gloo run with lazy
        # loading hung at its first batch with rank 0's worker stuck inside fork (a thread of the trainer
        # process alive at the fork); the dataset and collator are pickled to the workers instead.
        "multiprocessing_context": "forkserver" if workers > 0 and sys.platform.startswith("linux") else None,
        "pin_memory": args.dataloader_pin_memory and torch.cuda.is_available(),
        "persistent_workers": args.dataloader_persistent_workers and workers > 0,
    }


def build_loader(trainer: Trainer, dataset: Dataset, batch_size: int, sampler: Iterable[int] | Any) -> DataLoader:
    """A loader of ``dataset`` in ``sampler``'s order with ``trainer``'s collator and worker settings."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=trainer.args.dataloader_drop_last,
        **_worker_options(trainer),
    )
    return trainer.accelerator.prepare(loader)


def duration_loader(
    trainer: Trainer, dataset: Dataset, lengths: list[int] | None, max_batch_seconds: float
) -> DataLoader:
    """Training batches of at most ``max_batch_seconds`` of padded 16 kHz audio (:class:`DurationBatchSampler`).

    The same batches on every rank (seeded by the run's seed and the epoch); accelerate hands
    each rank its share. ``lengths`` are the items' samples (None: the dataset has none, e.g. a stream).
    """
    if lengths is None:
        raise ValueError("max_batch_seconds needs the clips' lengths: use train_loading eager or lazy")
    args = trainer.args
    sampler = DurationBatchSampler(
        lengths,
        round(max_batch_seconds * TARGET_SAMPLING_RATE),
        seed=args.seed,
        num_replicas=args.world_size,
        dataset=dataset,
    )
    return batch_sampler_loader(trainer, dataset, sampler)


def batch_sampler_loader(trainer: Trainer, dataset: Dataset, batch_sampler: Iterable[list[int]] | Any) -> DataLoader:
    """A loader of the batches ``batch_sampler`` draws, with ``trainer``'s collator and worker settings."""
    loader = DataLoader(dataset, batch_sampler=batch_sampler, **_worker_options(trainer))
    return trainer.accelerator.prepare(loader)


TRAIN_LOADINGS = ("eager", "lazy", "stream")


def max_batch_seconds_field() -> Any:
    """The ``--max_batch_seconds`` option of both trainers' DataArguments."""
    return field(
        default=None,
        metadata={
            "help": "Training batches of at most this much padded audio (items x longest clip or crop, seconds), "
            "length-bucketed, the same on every rank, longest first; replaces per_device_train_batch_size."
        },
    )


def shuffle_buffer_field() -> Any:
    """The ``--shuffle_buffer`` option of both trainers' DataArguments."""
    return field(default=1000, metadata={"help": "Items in the shuffle buffer of --train_loading stream."})


def check_loading(train_loading: str, max_batch_seconds: float | None, shuffle_buffer: int) -> None:
    """The data-loading options both trainers share, checked before any data is read."""
    if train_loading not in TRAIN_LOADINGS:
        raise ValueError(f"train_loading must be one of {TRAIN_LOADINGS}, got {train_loading!r}")
    if max_batch_seconds is not None and max_batch_seconds <= 0:
        raise ValueError(f"max_batch_seconds must be positive, got {max_batch_seconds}")
    if shuffle_buffer < 1:
        raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
