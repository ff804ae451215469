"""The Trainer of classification fine-tuning: :class:`~hf_w2v2.training.trainer.Wav2Vec2Trainer` with
class-balanced sampling or class weights, and length-bucketed batches.

Shape legend: B batch, L labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from hf_w2v2.data.sampler import BucketBatchSampler
from hf_w2v2.training.loaders import batch_sampler_loader, build_loader
from hf_w2v2.training.trainer import Wav2Vec2Trainer


def inverse_frequency(labels: Sequence[int], num_labels: int) -> torch.Tensor:
    """(L,) class weights N / (L x count): 1 for every class of a balanced set; 0 for a class with no clip."""
    counts = Counter(int(label) for label in labels)
    total = len(labels)
    return torch.tensor(
        [total / (num_labels * counts[c]) if counts[c] else 0.0 for c in range(num_labels)], dtype=torch.float32
    )


class ClassificationTrainer(Wav2Vec2Trainer):
    """Every shared mixin of :class:`Wav2Vec2Trainer`, and one of two answers to class imbalance.

    ``balanced_sampling``: training clips are drawn with replacement, each with probability
    proportional to 1 / (its class's count), so every class is seen equally often (an epoch is
    still ``len(train_dataset)`` clips). ``class_weights`` (L,): the cross-entropy of
    utterance classification is weighted per class instead. ``bucket_samples`` S (without balanced
    sampling): batches come from one length bucket at a time (see
    :class:`~hf_w2v2.data.sampler.BucketBatchSampler`), so a clip's padded width never changes.
    """

    def __init__(
        self,
        *args: Any,
        balanced_sampling: bool = False,
        class_weights: torch.Tensor | None = None,
        bucket_samples: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.balanced_sampling = balanced_sampling
        self.class_weights = class_weights
        self.bucket_samples = bucket_samples

    def get_train_dataloader(self) -> DataLoader:
        train: Any = self.train_dataset  # a ClipDataset
        if self.bucket_samples and not self.balanced_sampling:
            buckets = BucketBatchSampler(train.lengths, self.args.train_batch_size, self.bucket_samples, self.args.seed)
            return batch_sampler_loader(self, train, buckets)
        if not self.balanced_sampling:
            return super().get_train_dataloader()
        labels = [int(label) for label in train.labels]
        weights = inverse_frequency(labels, max(labels) + 1)[labels]  # (N,) per-clip draw weight
        generator = torch.Generator().manual_seed(self.args.seed)
        sampler = WeightedRandomSampler(weights.double().tolist(), num_samples=len(labels), generator=generator)
        return build_loader(self, train, self.args.train_batch_size, sampler)

    def job_loss(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> tuple[Any, Any]:
        """The head's own loss, or with ``class_weights`` a per-class weighted cross-entropy."""
        if self.class_weights is None:
            return super().job_loss(model, inputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        weights = self.class_weights.to(outputs.logits.device)
        return F.cross_entropy(outputs.logits.float(), labels, weight=weights), outputs  # (B, L) vs (B,)
