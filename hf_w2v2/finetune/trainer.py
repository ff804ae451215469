"""The Trainer of CTC fine-tuning: evaluation in dataset order, the time budget of
:mod:`hf_w2v2.training.budget`, and cached frozen conv outputs handed to the model's encoder
(:mod:`hf_w2v2.finetune.feature_cache`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler

from hf_w2v2.finetune.feature_cache import PREFIX_KEY, use_cached_prefix
from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.loaders import build_loader


class CTCTrainer(TimeBudgetTrainerMixin):
    """``Trainer`` with an optional wall-clock budget driving the learning-rate schedule.

    Evaluation reads datasets in order (never length-grouped), so prediction ``i`` is
    dataset item ``i``: padded frames are trimmed with the item's length and each
    prediction is written next to its utterance's name.
    """

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The stock loss; a batch's cached conv outputs go to the encoder, not into ``model(**inputs)``."""
        prefix = inputs.pop(PREFIX_KEY, None)
        with use_cached_prefix(self.accelerator.unwrap_model(model), prefix):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset: Any = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]  # type: ignore[index]  # a named eval set
        if dataset is None:
            raise ValueError("evaluation needs an eval_dataset")
        return build_loader(self, dataset, self.args.eval_batch_size, SequentialSampler(dataset))
