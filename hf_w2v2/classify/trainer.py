"""The Trainer of classification fine-tuning: the time budget, class-balanced sampling or class weights.

Shape legend: B batch, L labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, WeightedRandomSampler

from hf_w2v2.classify.feature_memo import BucketBatchSampler
from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.loaders import build_loader


def inverse_frequency(labels: Sequence[int], num_labels: int) -> torch.Tensor:
    """(L,) class weights N / (L x count): 1 for every class of a balanced set; 0 for a class with no clip."""
    counts = Counter(int(label) for label in labels)
    total = len(labels)
    return torch.tensor(
        [total / (num_labels * counts[c]) if counts[c] else 0.0 for c in range(num_labels)], dtype=torch.float32
    )


class ClassificationTrainer(TimeBudgetTrainerMixin):
    """``Trainer`` with an optional wall-clock budget, and one of two answers to class imbalance.

    ``balanced_sampling``: training clips are drawn with replacement, each with probability
    proportional to 1 / (its class's count), so every class is seen equally often (an epoch is
    still ``len(train_dataset)`` clips). ``class_weights`` (L,): the cross-entropy of
    utterance classification is weighted per class instead. ``bucket_samples`` S (without balanced
    sampling): batches come from one length bucket at a time (see
    :class:`~hf_w2v2.classify.feature_memo.BucketBatchSampler`), so a clip's padded width never changes.
    """

    def __init__(
        self,
        *args,
        balanced_sampling: bool = False,
        class_weights: torch.Tensor | None = None,
        bucket_samples: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.balanced_sampling = balanced_sampling
        self.class_weights = class_weights
        self.bucket_samples = bucket_samples

    def get_train_dataloader(self) -> DataLoader:
        if self.bucket_samples and not self.balanced_sampling:
            dataset: Any = self.train_dataset  # a ClipDataset
            lengths = [len(audio) for audio in dataset.audio]
            buckets = BucketBatchSampler(lengths, self.args.train_batch_size, self.bucket_samples, self.args.seed)
            loader = DataLoader(
                dataset,
                batch_sampler=buckets,
                collate_fn=self.data_collator,
                num_workers=self.args.dataloader_num_workers,
            )
            return self.accelerator.prepare(loader)
        if not self.balanced_sampling:
            return super().get_train_dataloader()
        train: Any = self.train_dataset  # a ClipDataset
        labels = [int(label) for label in train.labels]
        weights = inverse_frequency(labels, max(labels) + 1)[labels]  # (N,) per-clip draw weight
        generator = torch.Generator().manual_seed(self.args.seed)
        sampler = WeightedRandomSampler(weights.double().tolist(), num_samples=len(labels), generator=generator)
        return build_loader(self, train, self.args.train_batch_size, sampler)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.class_weights is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        weights = self.class_weights.to(outputs.logits.device)
        loss = F.cross_entropy(outputs.logits.float(), labels, weight=weights)  # (B, L) vs (B,)
        return (loss, outputs) if return_outputs else loss
