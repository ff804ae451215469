"""Trainer settings a streamed training set (``--train_loading stream``) needs, for both trainers.

A stream has no length: the Trainer needs ``max_steps`` (each rank's stream repeats its shards
forever, so ``max_steps`` is also what stops every rank together, see :mod:`hf_w2v2.data.stream`).
accelerate must not dispatch batches from rank 0 (its default for iterable datasets): with
``dispatch_batches=False`` each rank reads its own shards (``IterableDataset.shard``).
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainingArguments

logger = logging.getLogger(__name__)


def check_stream_args(args: TrainingArguments, max_batch_seconds: float | None = None) -> None:
    """Refuse, before any data is read, a schedule a stream cannot run."""
    if max_batch_seconds is not None:
        raise ValueError(
            "--max_batch_seconds needs every clip's length up front; with --train_loading stream batches hold "
            "per_device_train_batch_size clips (use --max_duration / --max_seconds to bound their length)"
        )
    if args.max_steps is None or args.max_steps <= 0:
        raise ValueError(
            "--train_loading stream needs --max_steps > 0: a stream has no length, so epochs cannot be counted "
            "(with --max_train_minutes, give a large --max_steps: the time budget stops training first)"
        )


def configure_streaming(args: TrainingArguments, max_batch_seconds: float | None = None) -> TrainingArguments:
    """``args`` checked and set for a streamed training set (each rank reads its own shards)."""
    check_stream_args(args, max_batch_seconds)
    config: Any = args.accelerator_config  # an AcceleratorConfig once TrainingArguments is built
    if isinstance(config, dict):
        config["dispatch_batches"] = False
    elif config is not None and not isinstance(config, str):
        config.dispatch_batches = False  # accelerate shards a datasets IterableDataset by rank only without it
    else:
        raise ValueError(f"accelerator_config {config!r}: expected the parsed AcceleratorConfig")
    strategy = str(getattr(args.train_sampling_strategy, "value", args.train_sampling_strategy))
    if strategy == "group_by_length":
        logger.warning(
            "--train_loading stream: group_by_length needs a dataset with lengths; batches keep stream order"
        )
        args.train_sampling_strategy = "random"
    return args
