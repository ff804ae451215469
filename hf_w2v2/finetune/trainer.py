"""The Trainer of CTC fine-tuning: resumable length grouping, evaluation in dataset order, atomic
checkpoints (:mod:`hf_w2v2.training.checkpoints`), the time budget of :mod:`hf_w2v2.training.budget`,
and cached frozen conv outputs handed to the model's encoder (:mod:`hf_w2v2.finetune.feature_cache`)."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

from hf_w2v2.data.sampler import LengthGroupedSampler
from hf_w2v2.finetune.feature_cache import PREFIX_KEY, use_cached_prefix
from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.checkpoints import AtomicCheckpointMixin
from hf_w2v2.training.distributed import ShardingTrainerMixin
from hf_w2v2.training.health import HealthMonitorCallback
from hf_w2v2.training.layerdrop import LayerDropSyncMixin
from hf_w2v2.training.loaders import build_loader, duration_loader
from hf_w2v2.training.nonfinite import NonFiniteLossMixin


def dataset_lengths(dataset: Any, column: str) -> list[int] | None:
    """Per-item lengths from a ``datasets.Dataset`` column or a ``lengths`` attribute; None if neither."""
    names = getattr(dataset, "column_names", None)
    if names is not None and column in names:
        return [int(n) for n in dataset[column]]
    lengths = getattr(dataset, "lengths", None)
    return None if lengths is None else [int(n) for n in lengths]


class CTCTrainer(
    AtomicCheckpointMixin, LayerDropSyncMixin, NonFiniteLossMixin, TimeBudgetTrainerMixin, ShardingTrainerMixin
):
    """``Trainer`` with an optional wall-clock budget driving the learning-rate schedule.

    Length-grouped training batches (``train_sampling_strategy="group_by_length"``) come from
    :class:`~hf_w2v2.data.sampler.LengthGroupedSampler`, whose order is a function of
    (seed, epoch) alone: a run resumed mid-epoch sees exactly the batches of the uninterrupted
    run (the stock sampler draws from the global RNG, which a checkpoint restores to its state
    at the save, not at the epoch start, so the resumed epoch had another order).

    A :class:`~hf_w2v2.training.health.HealthMonitorCallback` warns about all-blank output and
    exploding gradients. A training loss that is NaN or infinite is skipped and counted (``skip_nonfinite_loss``, on by
    default; :class:`~hf_w2v2.training.nonfinite.NonFiniteLossMixin`).

    ``max_batch_seconds`` replaces the fixed batch size with batches of at most that much padded
    audio (:class:`~hf_w2v2.data.sampler.DurationBatchSampler`), the same on every rank.

    Evaluation reads datasets in order (never length-grouped), so prediction ``i`` is
    dataset item ``i``: padded frames are trimmed with the item's length and each
    prediction is written next to its utterance's name.
    """

    def __init__(self, *args: Any, max_batch_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_batch_seconds = max_batch_seconds
        if not any(isinstance(cb, HealthMonitorCallback) for cb in self.callback_handler.callbacks):
            self.add_callback(HealthMonitorCallback())

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """The model's CTC loss; a NaN/inf one is skipped and counted (:mod:`hf_w2v2.training.nonfinite`).
        A batch's cached conv outputs go to the encoder, not into ``model(**inputs)``."""
        prefix = inputs.pop(PREFIX_KEY, None)
        with use_cached_prefix(self.accelerator.unwrap_model(model), prefix):
            result = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        if isinstance(result, tuple):  # return_outputs=True
            return self.guard_loss(model, result[0]), result[1]
        return self.guard_loss(model, result)

    def get_train_dataloader(self) -> DataLoader:
        """Batches by audio seconds (``max_batch_seconds``) or length-grouped batches from the dataset's
        lengths when asked; the stock loader otherwise."""
        if self.max_batch_seconds is not None and self.train_dataset is not None:
            lengths = dataset_lengths(self.train_dataset, self.args.length_column_name)
            return duration_loader(self, self.train_dataset, lengths, self.max_batch_seconds)
        if self.args.train_sampling_strategy != "group_by_length" or self.train_dataset is None:
            return super().get_train_dataloader()
        lengths = dataset_lengths(self.train_dataset, self.args.length_column_name)
        if lengths is None:
            return super().get_train_dataloader()
        group = self.args.train_batch_size * self.args.gradient_accumulation_steps
        sampler = LengthGroupedSampler(lengths, group, seed=self.args.seed, dataset=self.train_dataset)
        return build_loader(self, self.train_dataset, self.args.train_batch_size, sampler)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset: Any = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]  # type: ignore[index]  # a named eval set
        if dataset is None:
            raise ValueError("evaluation needs an eval_dataset")
        return build_loader(self, dataset, self.args.eval_batch_size, SequentialSampler(dataset))
