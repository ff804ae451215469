"""Say which distributed set-up a run really got, and whether its processes ended with one model.

A launch config that did not apply fails silently: ``accelerate launch`` of a DeepSpeed config with
``--use_cpu True`` trains plain data-parallel, and a process group without a backend trains one model
per process. So every
rank logs, when training starts, what accelerate set up (``DDP``/``FSDP``/``DeepSpeed ZeRO-n``,
the number of processes and the backend), and, when training ends with several processes, a
checksum of the full parameters (float64 sum of every parameter, in ``named_parameters`` order):
equal on all ranks and equal to the checksum of the saved model (:func:`parameter_checksum` of
it loaded back) when the replicas stayed in step and the save wrote the whole model. Sharded
parameters (ZeRO-3, FSDP2's DTensors) are gathered for the sum; every rank takes part. After the
first optimizer step every rank logs what it holds of the model and of the optimizer
(:func:`rank_memory`): sharding shows there as about 1/N of the data-parallel figures.

FSDP on CPU processes: accelerate switches FSDP on only for GPU-like devices and keeps
``MULTI_CPU`` (plain data parallel) otherwise, although torch's FSDP2 (``fully_shard``) shards over
gloo as well. :class:`ShardingTrainerMixin` switches it on when the launch asked for FSDP2
(:func:`enable_fsdp_on_cpu`), saves the final model whole (a standard folder) while checkpoints
stay sharded, and :func:`check_launch` refuses, before any data work, a strategy the machine cannot
run (DeepSpeed not installed, FSDP1 on CPUs, a torch without ``fully_shard``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_w2v2.training.precision import has_accelerator

logger = logging.getLogger(__name__)

START_MARK = "distributed setup:"
"""Start of the log line written at the start of training (read by tests and by people)."""
CHECKSUM_MARK = "parameter checksum"
"""Start of the log line with a rank's checksum at the end of training."""
MEMORY_MARK = "rank memory"
"""Start of the log line with what a rank holds of the model and optimizer after the first step."""
MIB = 2**20  # bytes in a MiB


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


def _local_bytes(tensor: torch.Tensor) -> int:
    """Bytes this rank stores of ``tensor``: its ZeRO-3 partition or FSDP2 shard, else all of it."""
    local = getattr(tensor, "ds_tensor", None)  # ZeRO-3: the parameter itself is an empty placeholder
    if local is None:
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor  # FSDP2: a DTensor's own shard
    return local.numel() * local.element_size()


@dataclass(frozen=True)
class RankMemory:
    """What one rank holds, in bytes: the model's parameters and the optimizer's tensors."""

    parameters: int
    """Parameters as stored on this rank (a shard under FSDP / ZeRO-3)."""
    optimizer: int
    """Optimizer state (Adam's two moments) plus master copies the optimizer keeps apart from the model
    (ZeRO's fp32 partitions); zero before the first step."""

    def format(self) -> str:
        total = self.parameters + self.optimizer
        return (
            f"parameters {self.parameters / MIB:.3f} MiB + optimizer {self.optimizer / MIB:.3f} MiB "
            f"= {total / MIB:.3f} MiB ({total} bytes)"
        )


MASTER_COPIES = ("single_partition_of_fp32_groups", "fp32_partitioned_groups_flat")
"""Where DeepSpeed's ZeRO-1/2 and ZeRO-3 optimizers keep their fp32 partitions (ZeRO-3 takes them out of the
torch optimizer's ``param_groups`` between steps, so they are read here)."""


def _optimizer_tensors(optimizer: Any) -> list[torch.Tensor]:
    """State and master copies of ``optimizer`` and of the optimizers it wraps (accelerate's, DeepSpeed's)."""
    tensors: list[torch.Tensor] = []
    for _ in range(4):  # AcceleratedOptimizer -> DeepSpeedZeroOptimizer -> torch optimizer, at most
        if optimizer is None:
            break
        for name in MASTER_COPIES:
            tensors += [t for t in getattr(optimizer, name, None) or [] if torch.is_tensor(t)]
        if isinstance(optimizer, torch.optim.Optimizer):
            tensors += [p for group in optimizer.param_groups for p in group["params"]]
            tensors += [v for values in optimizer.state.values() for v in values.values() if torch.is_tensor(v)]
        optimizer = getattr(optimizer, "optimizer", None)
    return tensors


def rank_memory(model: nn.Module, optimizer: Any = None) -> RankMemory:
    """This rank's parameter and optimizer bytes (:class:`RankMemory`); no communication."""
    model_params = list(model.parameters())
    seen = {id(p) for p in model_params}  # the model's own parameters are not the optimizer's memory
    extra = []
    for tensor in _optimizer_tensors(optimizer):
        if id(tensor) not in seen and tensor.dim() > 0:  # 0-dim: Adam's step counters
            seen.add(id(tensor))
            extra.append(tensor)
    return RankMemory(sum(_local_bytes(p) for p in model_params), sum(_local_bytes(t) for t in extra))


def check_launch() -> None:
    """Refuse, before any data work, a launch whose strategy this machine cannot run, saying what to change."""
    asked = launched_as()
    if asked == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        raise RuntimeError(
            "the accelerate config asks for DeepSpeed, which is not installed: pip install deepspeed "
            "(or pip install 'hf_w2v2[deepspeed]'), or launch with examples/accelerate/fsdp.yaml or ddp.yaml"
        )
    if asked != "FSDP":
        return
    version = os.environ.get("FSDP_VERSION", "1")
    if not has_accelerator() and version != "2":
        raise RuntimeError(
            f"the accelerate config asks for FSDP version {version} on CPU processes: only FSDP2 shards there; "
            "set fsdp_version: 2 in its fsdp_config (examples/accelerate/fsdp.yaml does)"
        )
    if version == "2" and not hasattr(torch.distributed, "fsdp"):
        raise RuntimeError(
            "FSDP2 needs a torch built with distributed support (torch.distributed.fsdp): pip install torch>=2.6"
        )
    if not has_accelerator() and not torch.distributed.is_gloo_available():
        raise RuntimeError("FSDP on CPU processes needs the gloo backend, which this torch build lacks")


def enable_fsdp_on_cpu(accelerator: Accelerator) -> bool:
    """Switch FSDP2 on for CPU processes that accelerate left data-parallel (``MULTI_CPU``); True if it did.

    accelerate reads FSDP only on GPU-like devices (``AcceleratorState`` keeps ``MULTI_CPU``), but
    ``fully_shard`` runs over gloo: the plugin is built from the launch's environment, as accelerate
    does, and the shared state says FSDP, so ``accelerator.prepare`` shards the model.
    """
    from accelerate.utils import FullyShardedDataParallelPlugin

    state = accelerator.state
    if launched_as() != "FSDP" or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()  # from FSDP_* variables, as accelerate builds it
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP  # AcceleratorState's shared state
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # what the PartialState() of others reads
    return True


class ShardingTrainerMixin(Trainer):
    """A ``Trainer`` that shards with FSDP2 on CPU processes too (:func:`enable_fsdp_on_cpu`) and whose final
    model is a standard folder under every strategy.

    With ``fsdp_state_dict_type: SHARDED_STATE_DICT`` the stock ``save_model`` writes no weights (checkpoints
    hold each rank's shard, ``pytorch_model_fsdp_0/``); the final save gathers the whole model once, so
    ``output_dir`` loads with ``from_pretrained`` (and stock transformers). A checkpoint's shards become
    such a folder with :func:`hf_w2v2.training.sharded_checkpoints.consolidate_checkpoint`.
    """

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        if not self.is_fsdp_enabled and enable_fsdp_on_cpu(self.accelerator):
            self.is_fsdp_enabled = True
            logger.info(
                "FSDP2 on CPU processes: the model is sharded over %d processes", self.accelerator.num_processes
            )
        if self.is_fsdp_enabled:
            # FSDP2 warns at every step that a unit's output is a view, which an in-place op would cut off its
            # backward hook; the model does no in-place op on them (tests/test_strategies.py: equal losses).
            warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        sharded = self.is_fsdp_enabled and "SHARDED" in str(self.accelerator.state.fsdp_plugin.state_dict_type)
        if not sharded:
            super().save_model(output_dir, _internal_call)
            return
        folder = str(output_dir or self.args.output_dir)
        if _internal_call:  # a checkpoint: _save_checkpoint writes the shards; what stock _save writes beside them
            config = getattr(self.model, "config", None)
            if self.args.should_save and config is not None:
                config.save_pretrained(folder)  # what the shards are (hf-w2v2 consolidate reads it)
            if self.args.should_save and self.processing_class is not None:
                self.processing_class.save_pretrained(folder)  # the vocabulary a resumed run checks
            return
        state_dict = self.accelerator.get_state_dict(self.model)  # a collective: every rank gathers
        self._save(folder, state_dict=state_dict)
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)


class DistributedReportCallback(TrainerCallback):
    """Log the distributed set-up at the start of training, each rank's :func:`rank_memory` after the first
    optimizer step and, with several processes, each rank's :func:`parameter_checksum` at the end (see the
    module docstring)."""

    def on_train_begin(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        logger.info("%s %s", START_MARK, describe_distribution())
        asked, got = launched_as(), AcceleratorState().distributed_type.value
        if asked is not None and asked != got:
            logger.warning(
                "the accelerate config asked for %s but accelerate set up %s (DeepSpeed does not run with "
                "--use_cpu True): training runs without %s",
                asked,
                got,
                asked,
            )

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        if state.global_step == 1 and model is not None:
            memory = rank_memory(model, kw.get("optimizer"))
            logger.info("%s rank %d: %s", MEMORY_MARK, AcceleratorState().process_index, memory.format())

    def on_train_end(self, args: TrainingArguments, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        accelerate_state = AcceleratorState()
        if model is None or accelerate_state.num_processes < 2:
            return
        checksum = parameter_checksum(model)
        logger.info("%s rank %d: %r", CHECKSUM_MARK, accelerate_state.process_index, checksum)
