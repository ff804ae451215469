"""``Wav2Vec2Trainer``: the one Trainer base of every job, with every shared mixin.

A job's trainer (:class:`hf_w2v2.finetune.trainer.CTCTrainer`,
:class:`hf_w2v2.classify.trainer.ClassificationTrainer`,
:class:`hf_w2v2.pretrain.trainer.PreTrainingTrainer`) subclasses it and adds only its loss
(:meth:`Wav2Vec2Trainer.job_loss`) and its batches (:meth:`Wav2Vec2Trainer.get_train_dataloader`).
What every job gets here:

- checkpoints written whole, then renamed (:mod:`hf_w2v2.training.checkpoints`);
- LayerDrop decisions shared by all processes (:mod:`hf_w2v2.training.layerdrop`);
- NaN/inf training losses skipped and counted (:mod:`hf_w2v2.training.nonfinite`);
- the wall-clock budget driving the learning rate (:mod:`hf_w2v2.training.budget`);
- Ctrl-C or SIGTERM stopping after the step with a checkpoint saved (:mod:`hf_w2v2.training.interrupt`);
- FSDP2 sharding on CPU processes too, and a standard final model folder under every strategy
  (:class:`hf_w2v2.training.distributed.ShardingTrainerMixin`);
- the health monitor (:mod:`hf_w2v2.training.health`), whose warnings the run writes into its
  results and card;
- a batch's cached frozen conv outputs handed to the encoder (:mod:`hf_w2v2.training.feature_cache`);
- the shared loaders (:mod:`hf_w2v2.training.loaders`): batches by audio seconds
  (``max_batch_seconds``), length-grouped batches that resume exactly (a function of seed and
  epoch), and evaluation in dataset order, so prediction ``i`` is dataset item ``i``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

from hf_w2v2.data.sampler import LengthGroupedSampler
from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.checkpoints import AtomicCheckpointMixin
from hf_w2v2.training.distributed import ShardingTrainerMixin
from hf_w2v2.training.feature_cache import PREFIX_KEY, use_cached_prefix
from hf_w2v2.training.health import HealthMonitorCallback
from hf_w2v2.training.interrupt import InterruptibleTrainerMixin
from hf_w2v2.training.layerdrop import LayerDropSyncMixin
from hf_w2v2.training.loaders import build_loader, duration_loader
from hf_w2v2.training.nonfinite import NonFiniteLossMixin


def argmax_logits(logits: torch.Tensor | tuple, labels: torch.Tensor) -> torch.Tensor:
    """``preprocess_logits_for_metrics`` of every job: (B, [F,] V) scores -> (B, [F]) best ids, so an
    evaluation keeps ids instead of logits."""
    tensor = logits[0] if isinstance(logits, tuple) else logits
    return tensor.argmax(dim=-1)  # (B, F, V) -> (B, F)


def dataset_lengths(dataset: Any, column: str) -> list[int] | None:
    """Per-item lengths from a ``datasets.Dataset`` column or a ``lengths`` attribute; None if neither."""
    names = getattr(dataset, "column_names", None)
    if names is not None and column in names:
        return [int(n) for n in dataset[column]]
    lengths = getattr(dataset, "lengths", None)
    return None if lengths is None else [int(n) for n in lengths]


class Wav2Vec2Trainer(
    AtomicCheckpointMixin,
    LayerDropSyncMixin,
    NonFiniteLossMixin,
    TimeBudgetTrainerMixin,
    ShardingTrainerMixin,
    InterruptibleTrainerMixin,
):
    """``Trainer`` with the shared mixins; see the module docstring.

    Extra arguments: ``max_batch_seconds`` (batches of at most that much padded audio instead of
    a fixed batch size), ``time_budget`` (:class:`~hf_w2v2.training.budget.TimeBudgetCallback`),
    ``skip_nonfinite_loss`` and ``nonfinite_patience`` (:class:`~hf_w2v2.training.nonfinite.NonFiniteLossMixin`).
    """

    def __init__(self, *args: Any, max_batch_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_batch_seconds = max_batch_seconds
        if self.health_monitor is None:
            self.add_callback(HealthMonitorCallback())  # all-blank output, codebook collapse, exploding gradients

    @property
    def health_monitor(self) -> HealthMonitorCallback | None:
        found = [cb for cb in self.callback_handler.callbacks if isinstance(cb, HealthMonitorCallback)]
        return found[0] if found else None

    def health_warnings(self) -> list[str]:
        """What the health monitor warned about in this run (for the results file and the card)."""
        monitor = self.health_monitor
        return list(monitor.warnings) if monitor is not None else []

    def job_loss(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> tuple[Any, Any]:
        """(loss, outputs) of one micro-batch: the model's own loss; a job with another loss overrides this."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        return loss, outputs

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """:meth:`job_loss`, with a batch's cached conv outputs handed to the encoder (not into
        ``model(**inputs)``) and a NaN/inf training loss skipped and counted."""
        prefix = inputs.pop(PREFIX_KEY, None)
        with use_cached_prefix(self.accelerator.unwrap_model(model), prefix):
            loss, outputs = self.job_loss(model, inputs, num_items_in_batch)
        loss = self.guard_loss(model, loss)
        return (loss, outputs) if return_outputs else loss

    def train_lengths(self) -> list[int] | None:
        """Samples per training item (a dataset column or ``lengths`` attribute); None when unknown."""
        return dataset_lengths(self.train_dataset, self.args.length_column_name)

    def get_train_dataloader(self) -> DataLoader:
        """Batches by audio seconds (``max_batch_seconds``) or length-grouped batches from the dataset's
        lengths when asked; the stock loader otherwise."""
        if self.train_dataset is None:
            return super().get_train_dataloader()
        if self.max_batch_seconds is not None:
            return duration_loader(self, self.train_dataset, self.train_lengths(), self.max_batch_seconds)
        lengths = self.train_lengths() if self.args.train_sampling_strategy == "group_by_length" else None
        if lengths is None:
            return super().get_train_dataloader()
        group = self.args.train_batch_size * self.args.gradient_accumulation_steps
        sampler = LengthGroupedSampler(lengths, group, seed=self.args.seed, dataset=self.train_dataset)
        return build_loader(self, self.train_dataset, self.args.train_batch_size, sampler)

    def eval_set(self, eval_dataset: Any = None) -> Any:
        """The dataset an evaluation reads: ``eval_dataset``, a named one of ``self.eval_dataset``, or it."""
        dataset: Any = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]  # type: ignore[index]  # a named eval set
        if dataset is None:
            raise ValueError("evaluation needs an eval_dataset")
        return dataset

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        """Evaluation in dataset order (never length-grouped): prediction ``i`` is dataset item ``i``."""
        dataset = self.eval_set(eval_dataset)
        return build_loader(self, dataset, self.args.eval_batch_size, SequentialSampler(dataset))

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader:
        """``predict`` (:func:`hf_w2v2.training.lifecycle.evaluate_set`) reads a set as an evaluation does."""
        return self.get_eval_dataloader(test_dataset)
