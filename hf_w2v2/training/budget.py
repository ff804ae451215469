"""A wall-clock training budget that drives the learning-rate schedule, for both trainers.

A fixed wall-clock budget (``--max_train_minutes``) is how a recipe is compared with
another on the same machine: the learning rate warms up over ``warmup_steps`` optimizer
steps (or, if ``warmup_steps < 1``, that fraction of the budget) and then decays with the
*fraction of the budget spent* rather than of ``max_steps``, so the schedule ends at zero
when the time is up, whatever the machine's speed. The time spent is saved in each
checkpoint (``trainer_state.json``, ``stateful_callbacks``) and a resumed run continues
the same schedule.

``warmup_stable_decay`` (the paper's tri-stage fine-tuning schedule) holds the peak after
the warm-up and decays only over the last ``decay_fraction`` of the budget
(``--lr_scheduler_kwargs '{"decay_fraction": 0.5, "decay_type": "linear"}'``, the defaults).
"""

from __future__ import annotations

import json
import math
import os
import time

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from hf_w2v2.training.hf_internals import mark_scheduler_created, stored_callback_state

SCHEDULES = ("linear", "cosine", "constant_with_warmup", "warmup_stable_decay")
DECAY_TYPES = ("linear", "cosine")
BUDGET_STATE_KEY = "TimeBudgetCallback"


class TimeBudgetCallback(TrainerCallback, ExportableState):
    """Counts training wall time (evaluation included) and stops training when ``max_minutes`` are spent."""

    def __init__(self, max_minutes: float, elapsed_s: float = 0.0) -> None:
        if max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {max_minutes}")
        self.max_minutes = max_minutes
        self.elapsed_before = elapsed_s  # seconds spent by earlier (resumed-from) runs
        self._start: float | None = None
        self._agreed: float | None = None  # rank 0's elapsed() at the last step boundary (several processes)

    def elapsed(self) -> float:
        """Seconds of training so far, earlier runs included."""
        running = 0.0 if self._start is None else time.monotonic() - self._start
        return self.elapsed_before + running

    def progress(self) -> float:
        """Fraction of the budget spent, in [0, 1]; with several processes, by rank 0's clock at the last
        step boundary (see :meth:`_agree`)."""
        spent = self.elapsed() if self._agreed is None else self._agreed
        return min(1.0, spent / (60.0 * self.max_minutes))

    def _agree(self, args: TrainingArguments) -> None:
        """Take rank 0's elapsed time on every rank. Each process has its own clock: read locally, the
        learning rate (a function of the time spent) would differ between data-parallel replicas, which
        then drift apart, and one rank could stop a step before the others, which then wait for it forever."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        if torch.distributed.get_world_size() < 2:
            return
        value = torch.tensor([self.elapsed()], dtype=torch.float64, device=args.device)
        torch.distributed.broadcast(value, src=0)
        self._agreed = float(value.item())

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw) -> None:
        self._start = time.monotonic()
        self._agreed = None

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw) -> None:
        self._agree(args)  # the learning rate of this step is computed from the agreed time

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw) -> None:
        self._agree(args)  # and so is the decision to stop: all ranks stop after the same step
        if self.progress() >= 1.0:
            control.should_training_stop = True
            control.should_save = str(getattr(args.save_strategy, "value", args.save_strategy)) != "no"

    def state(self) -> dict:
        return {"args": {"max_minutes": self.max_minutes, "elapsed_s": self.elapsed()}, "attributes": {}}


def saved_elapsed_seconds(checkpoint: str | os.PathLike) -> float:
    """Training seconds recorded in ``checkpoint/trainer_state.json`` (0 if none)."""
    path = os.path.join(checkpoint, "trainer_state.json")
    if not os.path.isfile(path):
        return 0.0
    with open(path, encoding="utf-8") as handle:
        stored = stored_callback_state(json.load(handle), BUDGET_STATE_KEY)
    return float(stored.get("args", {}).get("elapsed_s", 0.0))


def lr_factor(
    step: int, progress: float, warmup: float, schedule: str, decay_fraction: float = 0.5, decay_type: str = "linear"
) -> float:
    """Multiplier of the peak learning rate at optimizer ``step`` and budget ``progress`` in [0, 1].

    ``warmup >= 1``: warm-up steps; ``0 < warmup < 1``: warm-up fraction of the budget.
    ``decay_fraction`` and ``decay_type`` apply to ``warmup_stable_decay`` only: the peak is held
    until ``1 - decay_fraction`` of the budget, then decays (linearly or as a half cosine) to zero.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"a time-budget schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0.0 < decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction must be in (0, 1], got {decay_fraction}")
    if decay_type not in DECAY_TYPES:
        raise ValueError(f"decay_type must be one of {DECAY_TYPES}, got {decay_type!r}")
    ramp = 1.0
    if warmup >= 1:
        ramp = min(1.0, (step + 1) / warmup)
    elif warmup > 0:
        ramp = min(1.0, progress / warmup)
    if schedule == "constant_with_warmup":
        return ramp
    if schedule == "warmup_stable_decay":
        start = 1.0 - decay_fraction
        done = max(0.0, (progress - start) / decay_fraction)
        schedule = decay_type
    else:
        start = 0.0 if warmup >= 1 else warmup  # decay runs over the budget left after a time warm-up
        done = max(0.0, (progress - start) / (1.0 - start)) if start < 1 else 1.0
    done = min(1.0, done)
    decay = 1.0 - done if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))
    return max(0.0, ramp * decay)


def budget_schedule_kwargs(schedule: str, kwargs: dict | None) -> dict:
    """The ``lr_scheduler_kwargs`` a time-budget schedule takes, checked (unknown keys are refused)."""
    kwargs = dict(kwargs or {})
    if schedule != "warmup_stable_decay":
        if kwargs:
            raise ValueError(
                f"lr_scheduler_kwargs {sorted(kwargs)} are not used by a time-budget {schedule!r} schedule"
            )
        return {}
    unknown = set(kwargs) - {"decay_fraction", "decay_type"}
    if unknown:
        raise ValueError(
            f"a time-budget warmup_stable_decay schedule takes lr_scheduler_kwargs decay_fraction and decay_type "
            f"(fractions of the budget, not step counts), got {sorted(unknown)}"
        )
    decay_fraction, decay_type = float(kwargs.get("decay_fraction", 0.5)), str(kwargs.get("decay_type", "linear"))
    lr_factor(0, 0.0, 0.0, schedule, decay_fraction, decay_type)  # validate now, not at step 1
    return {"decay_fraction": decay_fraction, "decay_type": decay_type}


def budget_schedule(args: TrainingArguments) -> tuple[float, str, dict]:
    """Warm-up, schedule name and schedule kwargs of ``args`` for a time budget, checked now, not at step 1."""
    warmup = float(args.warmup_steps)
    schedule = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    lr_factor(0, 0.0, warmup, schedule)  # the name first: its error is the clearer one
    return warmup, schedule, budget_schedule_kwargs(schedule, getattr(args, "lr_scheduler_kwargs", None))


class TimeBudgetTrainerMixin(Trainer):
    """A ``Trainer`` whose learning rate follows a :class:`TimeBudgetCallback` when one is given.

    ``time_budget=None`` keeps the stock step-based schedule. Used by ``CTCTrainer`` and
    ``PreTrainingTrainer`` alike.
    """

    def __init__(self, *args, time_budget: TimeBudgetCallback | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_budget = time_budget
        if time_budget is not None:
            self.add_callback(time_budget)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.time_budget is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            budget = self.time_budget
            warmup, schedule, extra = budget_schedule(self.args)

            def factor(step: int) -> float:  # a plain function: LambdaLR does not pickle it
                return lr_factor(step, budget.progress(), warmup, schedule, **extra)

            target = optimizer if optimizer is not None else self.optimizer
            if target is None:
                raise ValueError("create the optimizer before the scheduler")
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(target, factor)
            mark_scheduler_created(self)
        return self.lr_scheduler


def budget_for_run(
    max_minutes: float | None, checkpoint: str | None, extra_seconds: float = 0.0
) -> TimeBudgetCallback | None:
    """The budget of a run (``None`` without ``max_minutes``), charged with the time a resumed checkpoint
    already spent and ``extra_seconds`` of preparation that replaced training work (e.g. feature caching)."""
    if max_minutes is None:
        return None
    spent = (saved_elapsed_seconds(checkpoint) if checkpoint else 0.0) + extra_seconds
    return TimeBudgetCallback(max_minutes, spent)
