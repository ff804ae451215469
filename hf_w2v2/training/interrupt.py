"""Ctrl-C (or SIGTERM) during training: stop after the current step, save a checkpoint, say how to resume.

The stock ``Trainer`` dies on Ctrl-C with a traceback from wherever the step was, and everything since the
last save is lost (up to ``save_steps`` of work); a cluster's SIGTERM (preemption, ``docker stop``, a job
scheduler's time limit) kills it outright. Here the first SIGINT or SIGTERM asks training to stop at the
next step boundary: that step's checkpoint is written (whole: :mod:`hf_w2v2.training.checkpoints`; with
``save_strategy`` ``no`` too, since the work so far would otherwise be lost), and
``train()`` raises :class:`TrainingInterrupted` naming it and the way to resume (``--resume_from_checkpoint
latest``, which continues with exactly the weights of an uninterrupted run). A second Ctrl-C stops at once,
as the stock Trainer does (a save in progress then leaves only a staging folder, never a damaged checkpoint).

With several processes, all stop after the first step at whose end any of them has seen a signal (a
maximum over the ranks at every step end): one rank stopping a step before the others would leave them
waiting forever.
Signal handlers are set only from the main thread (Python allows no other); elsewhere training runs as stock.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a step boundary on a signal; ``checkpoint`` is the folder saved there (None: none was
    found). A ``KeyboardInterrupt``: code that handles Ctrl-C handles this too."""

    def __init__(self, signum: int, step: int, max_steps: int, checkpoint: str | None) -> None:
        self.signum, self.step, self.max_steps, self.checkpoint = signum, step, max_steps, checkpoint
        name = signal.Signals(signum).name
        if checkpoint is None:
            message = f"{name}: training stopped at step {step} of {max_steps}; no checkpoint was saved"
        else:
            message = (
                f"{name}: training stopped at step {step} of {max_steps} and saved {checkpoint}; "
                f"resume with --resume_from_checkpoint latest (the same --output_dir)"
            )
        super().__init__(message)

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a command the signal stopped (130 for Ctrl-C; a script
        ends so with :func:`hf_w2v2.exits.exit_on_interrupt`)."""
        return 128 + self.signum


class InterruptCallback(TrainerCallback):
    """Turns the first SIGINT/SIGTERM of a training run into a stop and a save after the current step."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal this process received (a second one stops it at once)
        self.signum: int | None = None  # the signal training stops on, agreed by every process
        self.stopped_at: int | None = None  # the step training stopped after
        self._previous: dict[int, Any] = {}
        self._main = True  # the main process of the run (the one that says what happens)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # the second one: stop now
            self.restore()
            raise KeyboardInterrupt
        self.received = signum  # (another rank's signal may have stopped training already: not a second one)
        if self._main:  # one line for a distributed run, not one per process
            logger.warning(
                "%s: training stops after this step and saves a checkpoint to resume from (Ctrl-C again: stop at once)",
                signal.Signals(signum).name,
            )

    def restore(self) -> None:
        """Put back the handlers that were there before training began."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.received, self.signum, self.stopped_at = None, None, None
        self._main = state.is_world_process_zero
        if threading.current_thread() is threading.main_thread() and not self._previous:
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        signum = self._agreed(args)
        if signum:
            self.signum, self.stopped_at = signum, state.global_step
            control.should_training_stop = True
            control.should_save = True  # with save_strategy "no" too: the work so far is not thrown away

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.restore()

    def _agreed(self, args: TrainingArguments) -> int:
        """The signal any rank received (0: none; the larger number where two differ), the same on every rank;
        this process's own without several processes."""
        mine = self.received or 0
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return mine
        if torch.distributed.get_world_size() < 2:
            return mine
        value = torch.tensor([mine], dtype=torch.int64, device=args.device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return int(value.item())


class InterruptibleTrainerMixin(Trainer):
    """A ``Trainer`` whose ``train()`` stops cleanly on the first SIGINT/SIGTERM (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interrupt = InterruptCallback()
        self.add_callback(self.interrupt)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        try:
            output = super().train(*args, **kwargs)
        finally:
            self.interrupt.restore()  # also where training ended with an exception
        step, signum = self.interrupt.stopped_at, self.interrupt.signum
        if step is not None and signum is not None:
            folder = os.path.join(str(self.args.output_dir), f"{PREFIX_CHECKPOINT_DIR}-{step}")
            raise TrainingInterrupted(signum, step, self.state.max_steps, folder if os.path.isdir(folder) else None)
        return output
