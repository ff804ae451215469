"""Say which distributed set-up a run really got, and whether its processes ended with one model.

A launch config that did not apply fails silently: ``accelerate launch`` of an FSDP config on
machines where accelerate cannot shard (it only shards on GPU-like devices) trains plain
data-parallel, and a process group without a backend trains one model per process. So every
rank logs, when training starts, what accelerate set up (``DDP``/``FSDP``/``DeepSpeed ZeRO-n``,
the number of processes and the backend), and, when training ends with several processes, a
checksum of the full parameters (float64 sum of every parameter, in ``named_parameters`` order):
equal on all ranks and equal to the checksum of the saved model (:func:`parameter_checksum` of
it loaded back) when the replicas stayed in step and the save wrote the whole model. Sharded
parameters (ZeRO-3, FSDP2's DTensors) are gathered for the sum; every rank takes part.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from accelerate.state import AcceleratorState, PartialState
from torch import nn
from transformers import TrainerCallback, TrainingArguments

logger = logging.getLogger(__name__)

START_MARK = "distributed setup:"
"""Start of the log line written at the start of training (read by tests and by people)."""
CHECKSUM_MARK = "parameter checksum"
"""Start of the log line with a rank's checksum at the end of training."""


def describe_distribution() -> str:
    """``"DEEPSPEED (ZeRO-2), 2 processes, backend gloo, rank 0"`` for the running accelerate state."""
    state = AcceleratorState()
    kind = str(state.distributed_type.value)
    deepspeed, fsdp = getattr(state, "deepspeed_plugin", None), getattr(state, "fsdp_plugin", None)  # set when used
    if deepspeed is not None:
        kind += f" (ZeRO-{deepspeed.zero_stage})"
    elif fsdp is not None:
        kind += f" (FSDP{fsdp.fsdp_version})"
    backend = PartialState().backend or "none"
    return f"{kind}, {state.num_processes} processes, backend {backend}, rank {state.process_index}"


def launched_as() -> str | None:
    """``"FSDP"`` or ``"DEEPSPEED"`` when ``accelerate launch`` was given such a config (its environment), else None."""
    for variable, kind in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
        if os.environ.get(variable, "false").lower() == "true":
            return kind
    return None


@contextlib.contextmanager
def _gathered(params: list[nn.Parameter]) -> Iterator[None]:
    """Parameters whole for the duration: ZeRO-3 partitions them (they carry a ``ds_id``)."""
    if any(hasattr(p, "ds_id") for p in params):
        import deepspeed  # only installed (and only needed) when ZeRO-3 partitioned the model

        with deepspeed.zero.GatheredParameters(params):
            yield
    else:
        yield


def parameter_checksum(model: nn.Module) -> float:
    """Float64 sum of every parameter of ``model`` (gathered when sharded); a collective under ZeRO-3/FSDP."""
    total = torch.zeros((), dtype=torch.float64)
    for _, p in model.named_parameters():  # one parameter whole at a time: bounded memory on big models
        with _gathered([p]), torch.no_grad():
            full = p.full_tensor() if hasattr(p, "full_tensor") else p  # FSDP2 DTensor shard -> whole tensor
            total += full.detach().to("cpu", torch.float64).sum()
    return float(total)


class DistributedReportCallback(TrainerCallback):
    """Log the distributed set-up at the start of training and, with several processes, each rank's
    :func:`parameter_checksum` at the end (see the module docstring)."""

    def on_train_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        logger.info("%s %s", START_MARK, describe_distribution())
        asked, got = launched_as(), AcceleratorState().distributed_type.value
        if asked is not None and asked != got:
            logger.warning(
                "the accelerate config asked for %s but accelerate set up %s (it shards with FSDP only on GPUs, "
                "and DeepSpeed not with --use_cpu True): training runs without %s",
                asked,
                got,
                asked,
            )

    def on_train_end(self, args: TrainingArguments, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        accelerate_state = AcceleratorState()
        if model is None or accelerate_state.num_processes < 2:
            return
        checksum = parameter_checksum(model)
        logger.info("%s rank %d: %r", CHECKSUM_MARK, accelerate_state.process_index, checksum)
