"""The Trainer of CTC fine-tuning: evaluation in dataset order, the time budget of :mod:`hf_w2v2.training.budget`."""

from __future__ import annotations

from torch.utils.data import DataLoader, SequentialSampler

from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.loaders import build_loader


class CTCTrainer(TimeBudgetTrainerMixin):
    """``Trainer`` with an optional wall-clock budget driving the learning-rate schedule.

    Evaluation reads datasets in order (never length-grouped), so prediction ``i`` is
    dataset item ``i``: padded frames are trimmed with the item's length and each
    prediction is written next to its utterance's name.
    """

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]
        if dataset is None:
            raise ValueError("evaluation needs an eval_dataset")
        return build_loader(self, dataset, self.args.eval_batch_size, SequentialSampler(dataset))
