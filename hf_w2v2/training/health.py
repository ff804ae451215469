"""Training health monitor: warnings for runs that go wrong without failing.

Some broken runs finish with exit code 0 and plausible-looking logs. The
:class:`HealthMonitorCallback` reads what both trainers already log and warns, naming
the step and the values, when

* CTC output has been all blank (every eval transcript empty) for ``blank_evaluations``
  evaluations in a row after warm-up (the model stopped at the "blank everywhere" optimum);
* the pre-training codebook perplexity falls below ``min_perplexity_fraction`` of the
  ``G x V`` codevectors (codebook collapse), after warm-up;
* the contrastive task is solved "perfectly" (accuracy >= 0.999 with loss ~0): the
  negatives cannot be told apart from nothing, i.e. a collapse (e.g. identical negatives
  or a leaked target), not a good model;
* a gradient norm is not finite or ``grad_norm_factor`` times the median of the last
  ``grad_norm_window`` logged ones (exploding gradients).

Warnings go to the log and to :attr:`HealthMonitorCallback.warnings`.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback, TrainingArguments

logger = logging.getLogger(__name__)

BLANK_METRIC = "blank_output_fraction"  # share of eval transcripts that are empty (finetune.metrics)


@dataclass
class HealthThresholds:
    """When :class:`HealthMonitorCallback` warns."""

    blank_evaluations: int = 3  # all-blank evaluations in a row (after warm-up) before a warning
    min_perplexity_fraction: float = 0.1  # codebook perplexity below this share of G x V: collapse
    collapse_accuracy: float = 0.999  # contrastive accuracy at least this ...
    collapse_loss: float = 0.01  # ... with a contrastive loss below this: collapse
    grad_norm_factor: float = 10.0  # gradient norm this many times the recent median: explosion
    grad_norm_window: int = 20  # logged gradient norms the median is taken over
    grad_norm_min_history: int = 5  # logged norms needed before comparing


class HealthMonitorCallback(TrainerCallback):
    """Warns about all-blank CTC output, codebook collapse, trivial contrastive task and exploding gradients."""

    def __init__(self, thresholds: HealthThresholds | None = None) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.warnings: list[str] = []
        self.codevectors: int | None = None  # G x V of the model's quantizer, when it has one
        self.warmup_steps: float = 0
        self._blank_streak = 0
        self._grad_norms: deque[float] = deque(maxlen=self.thresholds.grad_norm_window)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning("health: %s", message)

    def on_train_begin(self, args: TrainingArguments, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        config = getattr(model, "config", None)
        groups, per_group = (
            getattr(config, "num_codevector_groups", None),
            getattr(config, "num_codevectors_per_group", None),
        )
        self.codevectors = groups * per_group if groups and per_group else None
        self.warmup_steps = args.get_warmup_steps(state.max_steps) if state.max_steps > 0 else args.warmup_steps

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        logs = logs or {}
        step = state.global_step
        if "grad_norm" in logs:
            self.check_grad_norm(step, float(logs["grad_norm"]))
        for prefix in ("", "eval_"):
            self.check_pretraining(step, logs, prefix)

    def on_evaluate(
        self, args: TrainingArguments, state: Any, control: Any, metrics: dict | None = None, **kw: Any
    ) -> None:
        metrics = metrics or {}
        key = next((k for k in metrics if k.endswith(BLANK_METRIC)), None)
        if key is not None:
            self.check_blank_output(state.global_step, float(metrics[key]), metrics)

    def check_grad_norm(self, step: int, norm: float) -> None:
        t = self.thresholds
        if not math.isfinite(norm):
            self._warn(f"step {step}: gradient norm is {norm}")
            return
        if len(self._grad_norms) >= t.grad_norm_min_history:
            median = statistics.median(self._grad_norms)
            if median > 0 and norm > t.grad_norm_factor * median:
                self._warn(
                    f"step {step}: gradient norm {norm:.4g} is {norm / median:.1f}x the median {median:.4g} of the "
                    f"last {len(self._grad_norms)} logged (exploding gradients? lower the learning rate or clip)"
                )
        self._grad_norms.append(norm)

    def check_pretraining(self, step: int, logs: dict, prefix: str) -> None:
        t = self.thresholds
        perplexity = logs.get(f"{prefix}codevector_perplexity")
        floor = t.min_perplexity_fraction * (self.codevectors or 0)
        if perplexity is not None and step > self.warmup_steps and perplexity < floor:
            self._warn(
                f"step {step}: {prefix}codevector_perplexity {perplexity:.1f} is below "
                f"{t.min_perplexity_fraction:.0%} of the {self.codevectors} codevectors (codebook collapse; "
                "raise diversity_loss_weight or the Gumbel temperature)"
            )
        accuracy, loss = logs.get(f"{prefix}contrastive_accuracy"), logs.get(f"{prefix}contrastive_loss")
        if accuracy is not None and loss is not None and accuracy >= t.collapse_accuracy and loss < t.collapse_loss:
            self._warn(
                f"step {step}: {prefix}contrastive_accuracy {accuracy:.4f} with {prefix}contrastive_loss {loss:.2g}: "
                "the task is trivial, a collapse (identical negatives? targets leaking into the context?)"
            )

    def check_blank_output(self, step: int, fraction: float, metrics: dict) -> None:
        if step <= self.warmup_steps or fraction < 1.0:
            self._blank_streak = 0
            return
        self._blank_streak += 1
        if self._blank_streak >= self.thresholds.blank_evaluations:
            loss = metrics.get("eval_loss")
            self._warn(
                f"step {step}: CTC output has been all blank (every eval transcript empty) for {self._blank_streak} "
                f"evaluations after warm-up (eval_loss {loss}); raise the learning rate or train longer, check the "
                "labels and the vocabulary"
            )
