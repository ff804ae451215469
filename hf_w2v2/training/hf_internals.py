"""Every use hf_w2v2 makes of transformers beyond its documented public API, in one place, with the reason.

The model classes use ``PreTrainedModel``'s documented extension points (``config_class``,
``base_model_prefix``, ``main_input_name``, ``_init_weights``, ``_supports_sdpa``,
``supports_gradient_checkpointing``, ``post_init``); they are part of the contract of a
``PreTrainedModel`` subclass and are not listed here. What follows is Trainer plumbing that
transformers does not document; each helper names the attribute it touches and why, so that a
transformers upgrade that changes one breaks here, in a test, and nowhere else.

Also imported from transformers submodules rather than its top-level namespace (documented, not
re-exported): ``transformers.utils.ModelOutput`` (model outputs), ``transformers.trainer_callback.
ExportableState`` (callbacks saved in checkpoints: the time budget) and ``transformers.trainer_utils.
get_last_checkpoint`` (``--resume_from_checkpoint latest``). ``Trainer.loss_is_scaled_for_ga`` is
documented in the Trainer's docstring and set directly by the pre-training trainer.

FSDP on CPU processes (:class:`hf_w2v2.training.distributed.ShardingTrainerMixin`) overrides
``Trainer.create_accelerator_and_postprocess`` (undocumented: where the Trainer builds its
``Accelerator``) to switch the accelerator to FSDP after it is built, sets the Trainer's
``is_fsdp_enabled`` flag to match, and writes the gathered model with ``Trainer._save(output_dir,
state_dict=...)`` (the Trainer's own write of a state dict); on the accelerate side it sets
``AcceleratorState.fsdp_plugin`` / ``distributed_type`` and ``PartialState._shared_state
["distributed_type"]``, what accelerate's own constructor sets for FSDP on GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import Trainer

SCHEDULER_CREATED_ATTR = "_created_lr_scheduler"
"""Trainer flag: the Trainer created the LR scheduler itself, so it steps and saves it. Set when a
trainer builds its own (time-budget) scheduler in ``create_scheduler``, as the stock method does;
without it a resumed run would not restore the scheduler state."""

STATEFUL_CALLBACKS_KEY = "stateful_callbacks"
"""Key of ``trainer_state.json`` under which ``ExportableState`` callbacks are saved; read to learn
how much of a time budget a checkpoint had spent before the Trainer restores its callbacks."""


OUTPUT_DIR_METHOD = "_get_output_dir"
"""Trainer method (undocumented) giving the folder ``_save_checkpoint`` writes ``checkpoint-N`` into.
Pointed at a staging folder for the duration of one save, so that checkpoints are written whole and
then renamed (:class:`hf_w2v2.training.checkpoints.AtomicCheckpointMixin`); ``_save_checkpoint`` itself
is the Trainer's (undocumented) save of model, optimizer, scheduler, RNG and trainer state."""


def save_checkpoint_into(trainer: Trainer, folder: str, save: Callable[[], None]) -> None:
    """Run ``save`` (the stock ``_save_checkpoint``) with ``trainer`` writing ``checkpoint-N`` under ``folder``."""
    setattr(trainer, OUTPUT_DIR_METHOD, lambda trial=None: folder)
    try:
        save()
    finally:
        delattr(trainer, OUTPUT_DIR_METHOD)  # back to the class's method


def mark_scheduler_created(trainer: Trainer) -> None:
    """Tell ``trainer`` that the LR scheduler it holds was created by it (see :data:`SCHEDULER_CREATED_ATTR`)."""
    setattr(trainer, SCHEDULER_CREATED_ATTR, True)


def stored_callback_state(trainer_state: dict[str, Any], name: str) -> dict[str, Any]:
    """The saved state of the ``ExportableState`` callback ``name`` in a ``trainer_state.json`` mapping."""
    stored = trainer_state.get(STATEFUL_CALLBACKS_KEY, {}).get(name, {})
    if isinstance(stored, list):  # several callbacks of one class are saved as a list
        stored = stored[0] if stored else {}
    return dict(stored)
