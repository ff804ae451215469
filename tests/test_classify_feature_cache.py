"""Classification uses the one frozen-feature cache of fine-tuning (hf_w2v2.training.feature_cache): the loss
and gradients of a cached batch are those of the audio batch, through the encoder's own (matmul) kernel;
length-bucketed batches keep every clip's padded width."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hf_w2v2.models.feature_encoder as feature_encoder
from hf_w2v2.classify.data import ClassificationCollator
from hf_w2v2.data.sampler import BucketBatchSampler
from hf_w2v2.models.classification import Wav2Vec2ForSequenceClassification
from hf_w2v2.models.configuration import tiny
from hf_w2v2.training.feature_cache import (
    PREFIX_KEY,
    CachedFeatureCollator,
    FrozenFeatureCache,
    attach_cache,
    use_cached_prefix,
)


class Clips(torch.utils.data.Dataset):
    """A map-style set of ``{"input_values", "labels"}`` items, as classification's ClipDataset."""

    def __init__(self, lengths: list[int]) -> None:
        gen = np.random.default_rng(0)
        self.audio = [gen.standard_normal(n).astype(np.float32) for n in lengths]
        self.labels = [i % 3 for i in range(len(lengths))]

    def __len__(self) -> int:
        return len(self.audio)

    def __getitem__(self, i: int) -> dict:
        return {"input_values": self.audio[i], "labels": self.labels[i]}


@pytest.mark.parametrize("layers", [2, 7])  # 7: the whole (tiny) feature encoder
def test_cached_classification_batch_gives_the_audio_loss_and_gradients(layers, monkeypatch):
    torch.manual_seed(0)
    no_dropout = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0)
    config = tiny(num_labels=3, feat_extract_norm="layer", mask_time_prob=0.0, layerdrop=0.0, **no_dropout)
    model = Wav2Vec2ForSequenceClassification(config).train()
    model.freeze_feature_encoder(layers)
    clips = Clips([4000, 2500, 3200])
    collator = ClassificationCollator(return_attention_mask=True)
    items = [clips[i] for i in range(3)]
    reference = model(**collator(items)).loss
    reference.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()

    encoder = model.base_encoder().feature_extractor
    cache = FrozenFeatureCache(num_layers=layers)
    keyed = cache.add(encoder, clips, show_progress=False)
    assert len(cache.features) == 3 and keyed.labels == clips.labels  # the clips' attributes read through
    attach_cache(model, layers)
    batch = CachedFeatureCollator(base=collator, cache=cache)([keyed[i] for i in range(3)])
    calls = []
    original = feature_encoder.conv_as_matmul
    monkeypatch.setattr(feature_encoder, "conv_as_matmul", lambda *a: calls.append(1) or original(*a))
    with use_cached_prefix(model, batch.pop(PREFIX_KEY)):
        loss = model(**batch).loss
    if layers < len(encoder.conv_layers):  # blocks after the cached ones ran, through the encoder's own kernel
        assert calls, "the trainable conv blocks ran without the CPU matmul kernel"
    assert torch.allclose(loss, reference, atol=1e-5)
    loss.backward()
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, grads[name], atol=1e-4), name


def test_bucket_batches_hold_one_bucket_and_cover_every_clip():
    lengths = [100, 250, 260, 400, 90, 510, 520, 30]
    sampler = BucketBatchSampler(lengths, batch_size=2, bucket_samples=250, seed=0)
    first, second = list(sampler), list(sampler)
    for batches in (first, second):
        assert sorted(i for b in batches for i in b) == list(range(8))
        for batch in batches:
            assert len({-(-lengths[i] // 250) for i in batch}) == 1
    assert first != second and len(sampler) == len(first)
