"""The remembered frozen feature encoder gives the same outputs and gradients; bucket batches keep widths."""

from __future__ import annotations

import torch

from hf_w2v2.classify.feature_memo import BucketBatchSampler, memoize_frozen_encoder, release
from hf_w2v2.models.classification import Wav2Vec2ForSequenceClassification
from hf_w2v2.models.configuration import tiny


def test_memoized_encoder_is_exact_and_reuses_rows():
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(tiny(num_labels=3, mask_time_prob=0.0, layerdrop=0.0)).train()
    model.freeze_feature_encoder()
    audio, labels = torch.randn(3, 4000), torch.tensor([0, 1, 2])
    mask = torch.ones(3, 4000, dtype=torch.long)
    mask[1, 3000:] = 0
    torch.manual_seed(1)  # same dropout draws in every forward (LayerDrop off: its draws follow the step)
    reference = model(audio, attention_mask=mask, labels=labels).loss
    reference.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    memo = memoize_frozen_encoder(model)
    assert memo is not None
    for step in range(2):
        torch.manual_seed(1)
        loss = model(audio, attention_mask=mask, labels=labels).loss
        assert torch.allclose(loss, reference, atol=1e-5)
        loss.backward()
        for name, p in model.named_parameters():
            if p.grad is not None:
                assert torch.allclose(p.grad, (step + 1) * grads[name], atol=1e-4), name
    assert (memo.misses, memo.hits) == (3, 3)
    assert set(model.state_dict()) == set(Wav2Vec2ForSequenceClassification(model.config).state_dict())
    release(memo)
    assert "forward" not in vars(model.wav2vec2.feature_extractor)


def test_not_frozen_means_no_memo():
    model = Wav2Vec2ForSequenceClassification(tiny(num_labels=2))
    assert memoize_frozen_encoder(model) is None


def test_bucket_batches_hold_one_bucket_and_cover_every_clip():
    lengths = [100, 250, 260, 400, 90, 510, 520, 30]
    sampler = BucketBatchSampler(lengths, batch_size=2, bucket_samples=250, seed=0)
    first, second = list(sampler), list(sampler)
    for batches in (first, second):
        assert sorted(i for b in batches for i in b) == list(range(8))
        for batch in batches:
            assert len({-(-lengths[i] // 250) for i in batch}) == 1
    assert first != second and len(sampler) == len(first)
