"""LayerDrop in step across processes: every rank skips the same blocks at every step.

LayerDrop decisions used to be drawn from each process's own RNG, so two DDP processes ran
different blocks: the gradient reduction then waited for parameters one rank never used
("Expected to have finished reduction"), and under FSDP/ZeRO-3, where ranks gather each
layer together, it would hang. :func:`hf_w2v2.models.transformer.layerdrop_keep` draws them
from (seed, step, micro-batch); this callback gives the encoders the run's seed and the
optimizer step before each step. Blocks skipped by all ranks still leave parameters without
gradients, so DDP must look for unused parameters (:func:`prepare_layerdrop`).
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_w2v2.models.transformer import TransformerEncoder

logger = logging.getLogger(__name__)


def set_layerdrop_step(model: nn.Module, seed: int, step: int) -> None:
    """Give every :class:`TransformerEncoder` of ``model`` the shared seed and the optimizer step."""
    for module in model.modules():
        if isinstance(module, TransformerEncoder):
            module.layerdrop_seed, module.layerdrop_step, module.layerdrop_pass = seed, step, 0


def uses_layerdrop(model: nn.Module) -> bool:
    return any(isinstance(m, TransformerEncoder) and m.layerdrop > 0.0 for m in model.modules())


def prepare_layerdrop(model: nn.Module, args: TrainingArguments) -> None:
    """With LayerDrop, let DDP find unused parameters (the Trainer turns that off under gradient checkpointing)."""
    if uses_layerdrop(model) and args.ddp_find_unused_parameters is None:
        args.ddp_find_unused_parameters = True
        logger.info("LayerDrop: ddp_find_unused_parameters=True (skipped blocks get no gradient)")


class LayerDropSyncCallback(TrainerCallback):
    """Before each optimizer step, set the encoders' LayerDrop seed (``args.seed``) and step."""

    def on_step_begin(self, args: TrainingArguments, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        if model is not None:
            set_layerdrop_step(model, args.seed, state.global_step)


class LayerDropSyncMixin(Trainer):
    """A ``Trainer`` with :class:`LayerDropSyncCallback` and DDP set up for LayerDrop (:func:`prepare_layerdrop`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        model = kwargs.get("model", args[0] if args else None)
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if isinstance(model, nn.Module) and training_args is not None:
            prepare_layerdrop(model, training_args)  # before the Trainer builds its accelerator
        super().__init__(*args, **kwargs)
        self.add_callback(LayerDropSyncCallback())
