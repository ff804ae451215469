"""Micro-batches whose loss is NaN or infinite: skipped, counted, reported; a run of nothing but them stops.

A CTC loss is infinite when a transcript cannot be aligned to the frames (more labels than
frames, once repeats need blanks between them) and NaN after an overflow; one such
micro-batch's backward pass fills every gradient with NaN and the next optimizer step
destroys the model. With ``skip_nonfinite_loss`` (on for CTC fine-tuning) the loss of such a
micro-batch is replaced by ``0 x sum(parameters)``: every parameter gets an exact zero
gradient (so data-parallel processes still reduce the same parameters), the other
micro-batches of the step count as usual, and the skip is counted. Counts are logged as they
happen (with the step), reported at the end of training (``train_nonfinite_loss_skipped``
in the train metrics, and in the model card); a run whose every micro-batch was non-finite,
or that sees ``nonfinite_patience`` of them in a row, stops with :class:`NonFiniteLossError`.

An optimizer step whose micro-batches were all skipped still applies momentum and weight
decay (the Trainer has no public way to cancel a step); the skip keeps NaN out of the weights.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import Trainer

logger = logging.getLogger(__name__)

NONFINITE_METRIC = "train_nonfinite_loss_skipped"
PATIENCE = 50  # consecutive non-finite micro-batches before the run stops
LOGGED = 10  # skips logged one by one before only the total is reported


class NonFiniteLossError(RuntimeError):
    """Training cannot go on: every (or a long run of) micro-batch loss was NaN or infinite."""


class NonFiniteLossMixin(Trainer):
    """A ``Trainer`` whose ``compute_loss`` passes its training loss through :meth:`guard_loss`.

    Extra arguments: ``skip_nonfinite_loss`` (default True) and ``nonfinite_patience``.
    """

    def __init__(
        self, *args: Any, skip_nonfinite_loss: bool = True, nonfinite_patience: int = PATIENCE, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.skip_nonfinite_loss = skip_nonfinite_loss
        self.nonfinite_patience = nonfinite_patience
        self.nonfinite_skipped = 0  # micro-batches skipped by this process in this run
        self.loss_batches = 0  # training micro-batches seen by this process in this run
        self._nonfinite_in_a_row = 0

    def guard_loss(self, model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
        """``loss``, or a zero-gradient stand-in when it is not finite (training only, when enabled)."""
        if not (self.skip_nonfinite_loss and model.training and torch.is_grad_enabled()):
            return loss
        self.loss_batches += 1
        if bool(torch.isfinite(loss.detach()).all()):
            self._nonfinite_in_a_row = 0
            return loss
        self.nonfinite_skipped += 1
        self._nonfinite_in_a_row += 1
        step = self.state.global_step + 1
        if self.nonfinite_skipped <= LOGGED:
            logger.warning(
                "step %d: loss is %s, micro-batch skipped (%d so far)", step, loss.item(), self.nonfinite_skipped
            )
        if self._nonfinite_in_a_row >= self.nonfinite_patience:
            raise NonFiniteLossError(
                f"step {step}: {self._nonfinite_in_a_row} micro-batches in a row had a NaN/inf loss "
                f"({self.nonfinite_skipped} of {self.loss_batches} in this run); {_ADVICE}"
            )
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0 if params else loss.detach() * 0.0

    def train(self, *args: Any, **kwargs: Any) -> Any:
        output = super().train(*args, **kwargs)
        if not self.skip_nonfinite_loss:
            return output
        counts = torch.tensor([self.nonfinite_skipped, self.loss_batches], device=self.args.device)
        skipped, seen = (int(v) for v in self.accelerator.reduce(counts, reduction="sum").tolist())
        if seen and skipped == seen:
            raise NonFiniteLossError(f"every one of the {seen} training micro-batches had a NaN/inf loss; {_ADVICE}")
        output.metrics[NONFINITE_METRIC] = skipped
        if skipped:
            logger.warning("%d of %d training micro-batches had a NaN/inf loss and were skipped", skipped, seen)
        return output


_ADVICE = (
    "check the data (transcripts longer than their audio allows: CTC needs at least one frame per label), "
    "lower the learning rate, or use ctc_zero_infinity / fp32"
)
