"""Gumbel-softmax temperature schedule of the quantizer, as a function of the optimizer step.

Paper section 4.2 ("Pre-training"): "the temperature tau is annealed from 2 to a
minimum of 0.5 by a factor of 0.999995 at every update" (fairseq
``latent_temp=(2, 0.5, 0.999995)``), i.e.

    tau(step) = max(start * decay ** step, end)

The step is the *optimizer* step (``TrainerState.global_step``), not the number
of forward passes, so the schedule is the same with or without gradient
accumulation and survives a resume from a checkpoint.
:class:`GumbelTemperatureCallback` applies it to any model exposing
``set_gumbel_temperature(tau)`` (ours and transformers' ``Wav2Vec2ForPreTraining``)
and adds ``gumbel_temperature`` to the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accelerate.utils import extract_model_from_parallel
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

PAPER_START = 2.0  # tau at step 0
PAPER_END = 0.5  # floor of tau
PAPER_DECAY = 0.999995  # per optimizer step; reaches the floor after ~277k steps
LOG_KEY = "gumbel_temperature"


def gumbel_temperature(
    step: int, start: float = PAPER_START, end: float = PAPER_END, decay: float = PAPER_DECAY
) -> float:
    """``max(start * decay ** step, end)``: the quantizer's temperature after ``step`` optimizer steps."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    if end <= 0.0 or start < end:
        raise ValueError(f"need 0 < end <= start, got start={start}, end={end}")
    return max(start * decay**step, end)


@dataclass(frozen=True)
class GumbelSchedule:
    """The three numbers of the schedule (fairseq's ``latent_temp`` tuple)."""

    start: float = PAPER_START
    end: float = PAPER_END
    decay: float = PAPER_DECAY

    def __call__(self, step: int) -> float:
        return gumbel_temperature(step, self.start, self.end, self.decay)


def _unwrap(model: nn.Module) -> Any:
    """The module that owns ``set_gumbel_temperature``, through DDP / DeepSpeed / compile wrappers
    (accelerate's ``extract_model_from_parallel``)."""
    inner = extract_model_from_parallel(model)
    if not hasattr(inner, "set_gumbel_temperature"):
        raise ValueError(
            f"{type(inner).__name__} has no set_gumbel_temperature(tau); "
            "GumbelTemperatureCallback needs a wav2vec 2.0 pre-training model"
        )
    return inner


class GumbelTemperatureCallback(TrainerCallback):
    """Sets ``tau(global_step)`` on the model before every optimizer step and logs it.

    ``on_train_begin`` covers step 0 and resumed runs (``global_step`` is restored
    from the checkpoint by then); ``on_step_end`` fires once per optimizer step,
    after ``global_step`` was incremented, so all micro-batches of an
    accumulation window share one temperature.
    """

    def __init__(self, schedule: GumbelSchedule | None = None) -> None:
        self.schedule = schedule or GumbelSchedule()
        self.temperature = self.schedule(0)

    def _apply(self, state: TrainerState, model: nn.Module | None) -> None:
        self.temperature = self.schedule(state.global_step)
        if model is not None:
            _unwrap(model).set_gumbel_temperature(self.temperature)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ) -> None:
        self._apply(state, model)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model=None, **kwargs
    ) -> None:
        self._apply(state, model)

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs
    ) -> None:
        """Add the temperature to training logs (eval logs carry no ``loss`` key and are left alone)."""
        if logs is None or "loss" not in logs or LOG_KEY in logs:
            return
        logs[LOG_KEY] = self.temperature
        last = state.log_history[-1] if state.log_history else None
        if last is not None and last.get("step") == state.global_step and "loss" in last:
            last[LOG_KEY] = self.temperature  # Trainer.log stored its copy before calling us
