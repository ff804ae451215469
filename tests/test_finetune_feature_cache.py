"""Frozen conv blocks computed once (``--cache_frozen_features``) give the numbers of the full
forward pass: the encoder started from a cached prefix, the cache + collator, and a training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_w2v2 import Wav2Vec2Config, Wav2Vec2ForCTC
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.models.configuration import tiny

datasets = pytest.importorskip("datasets")

from hf_w2v2.training.feature_cache import (  # noqa: E402
    KEY_COLUMN,
    PREFIX_KEY,
    CachedFeatureCollator,
    FrozenFeatureCache,
    PrefixCompute,
    attach_cache,
    use_cached_prefix,
)

FIXTURE = Path(__file__).parent / "fixtures" / "finetune"


def tiny_layer_norm() -> Wav2Vec2Config:
    return tiny(
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        vocab_size=12,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
    )


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    audio = torch.zeros(len(lengths), max(lengths))  # (B, T)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, n in enumerate(lengths):
        audio[row, :n] = torch.randn(n, generator=gen)
        mask[row, :n] = 1
    labels = torch.tensor([[3, 4, 5, 6], [7, 8, -100, -100], [9, 3, 4, -100]])[: len(lengths)]
    return audio, mask, labels


@pytest.mark.parametrize("layers", [1, 3, 7])
def test_a_forward_started_from_a_cached_prefix_equals_the_audio_forward(layers):
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny_layer_norm()).eval()
    audio, mask, labels = padded_batch([8000, 5000, 6400])
    full = model(audio, attention_mask=mask, labels=labels)
    with torch.no_grad():
        prefix = model.wav2vec2.feature_extractor.prefix(audio, layers)  # (B, C, F_k)
    keys = set(model.state_dict())
    encoder = attach_cache(model, layers)
    assert set(model.state_dict()) == keys  # same parameters, same checkpoint keys
    with use_cached_prefix(model, prefix):
        cached = model(audio, attention_mask=mask, labels=labels)
    assert encoder.next_prefix is None  # used once
    torch.testing.assert_close(cached.logits, full.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cached.loss, full.loss, rtol=1e-5, atol=1e-5)
    again = model(audio, attention_mask=mask, labels=labels)  # without a prefix: the audio path
    torch.testing.assert_close(again.logits, full.logits)


def test_cached_prefix_bad_calls_are_refused():
    model = Wav2Vec2ForCTC(tiny_layer_norm()).eval()
    audio, mask, _ = padded_batch([8000, 5000])
    prefix = model.wav2vec2.feature_extractor.prefix(audio, 2)
    with pytest.raises(ValueError, match="no cache attached"), use_cached_prefix(model, prefix):
        pass
    attach_cache(model, 2)
    with pytest.raises(ValueError, match="does not belong to an audio batch"), use_cached_prefix(model, prefix[:1]):
        model(audio, attention_mask=mask)
    with pytest.raises(ValueError, match="num_layers must be in"):
        model.wav2vec2.feature_extractor.prefix(audio, 8)


def _dataset(lengths: list[int]) -> datasets.Dataset:
    gen = np.random.default_rng(0)
    rows = {
        "input_values": [gen.standard_normal(n).astype(np.float32) for n in lengths],
        "labels": [[3, 4, 5], [6, 7], [8, 9, 10, 3], [4, 4]][: len(lengths)],
        "input_length": lengths,
    }
    return datasets.Dataset.from_dict(rows).with_format("numpy")


@pytest.mark.parametrize("autocast_dtype", [None, torch.bfloat16])
def test_cached_batches_give_the_loss_and_gradients_of_audio_batches(autocast_dtype):
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny_layer_norm())
    model.freeze_feature_encoder(3)
    data = _dataset([8000, 5200, 6400, 4000])
    cache = FrozenFeatureCache(num_layers=3)
    keyed = cache.add(
        model.wav2vec2.feature_extractor,
        data,
        first_key=10,
        compute=PrefixCompute(autocast_dtype=autocast_dtype),
        show_progress=False,
    )
    assert sorted(cache.features) == [10, 11, 12, 13] and "input_values" in keyed[0]
    assert [int(k) for k in keyed[KEY_COLUMN]] == [10, 11, 12, 13]
    assert cache.features[10].dtype == (autocast_dtype or torch.float32)
    assert cache.nbytes == sum(t.numel() * t.element_size() for t in cache.features.values())
    base = DataCollatorCTCWithPadding(return_attention_mask=True)
    collator = CachedFeatureCollator(base=base, cache=cache)
    cached_batch = collator([keyed[i] for i in range(4)])
    audio_batch = base([data[i] for i in range(4)])
    assert cached_batch[PREFIX_KEY].shape[:2] == (4, 16)
    for key in ("input_values", "attention_mask", "labels"):  # the ordinary audio batch, plus the prefix
        torch.testing.assert_close(cached_batch[key], audio_batch[key])
    attach_cache(model, 3)

    def loss_and_grads(batch):
        model.zero_grad()
        batch = dict(batch)
        with (
            use_cached_prefix(model, batch.pop(PREFIX_KEY, None)),
            torch.autocast("cpu", dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None),
        ):
            loss = model(**batch).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    model.eval()  # no dropout, so both batches see the same network
    loss_c, grads_c = loss_and_grads(cached_batch)
    loss_a, grads_a = loss_and_grads(audio_batch)
    # Same numbers up to summation order (one utterance per conv call vs a padded batch).
    tol = 1e-5 if autocast_dtype is None else 1e-2
    torch.testing.assert_close(loss_c, loss_a, rtol=tol, atol=tol)
    flat_c, flat_a = torch.cat([g.flatten() for g in grads_c]), torch.cat([g.flatten() for g in grads_a])
    assert float((flat_c - flat_a).norm() / flat_a.norm()) < 10 * tol
    # Items without a cache entry (e.g. a test set) are collated from their audio alone.
    assert PREFIX_KEY not in collator([data[0], data[1]])
    with pytest.raises(ValueError, match="only the first 3 are frozen"):
        FrozenFeatureCache(num_layers=4).add(model.wav2vec2.feature_extractor, data, show_progress=False)


@pytest.mark.parametrize("layers", [1, 4, 7])
def test_batched_caching_keeps_each_items_own_frames_of_the_one_at_a_time_cache(layers):
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny_layer_norm())
    model.freeze_feature_encoder(layers)
    encoder = model.wav2vec2.feature_extractor
    data = _dataset([8000, 5200, 6400, 4000])
    alone, batched = FrozenFeatureCache(num_layers=layers), FrozenFeatureCache(num_layers=layers)
    alone.add(encoder, data, compute=PrefixCompute(batch_size=1), show_progress=False)
    keyed = batched.add(
        encoder, data, compute=PrefixCompute(batch_size=3), show_progress=False
    )  # batches of 3 and 1, length order
    assert [int(k) for k in keyed[KEY_COLUMN]] == [0, 1, 2, 3]  # keys follow the dataset, not length order
    for key in range(4):
        frames = int(encoder.output_frames(int(data[key]["input_length"]), layers))
        assert batched.features[key].shape == alone.features[key].shape == (16, frames)
        torch.testing.assert_close(batched.features[key], alone.features[key], rtol=1e-5, atol=1e-5)
    # Each entry owns its storage (a view would keep the padded batch alive).
    assert batched.nbytes == sum(t.untyped_storage().nbytes() for t in batched.features.values())


def test_group_norm_encoders_are_cached_one_utterance_at_a_time():
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny(vocab_size=12, mask_time_prob=0.0))  # feat_extract_norm="group"
    model.freeze_feature_encoder(2)
    encoder = model.wav2vec2.feature_extractor
    assert not encoder.frame_local and tiny_layer_norm().feat_extract_norm == "layer"
    data = _dataset([8000, 4000])
    with pytest.raises(ValueError, match="group-norm feature encoder normalises over time"):
        FrozenFeatureCache(num_layers=2).add(encoder, data, compute=PrefixCompute(batch_size=2), show_progress=False)
    cache = FrozenFeatureCache(num_layers=2)
    cache.add(encoder, data, show_progress=False)  # default: one at a time
    long_audio, short_audio = (torch.as_tensor(data[i]["input_values"]) for i in (0, 1))  # 8000, 4000 samples
    with torch.no_grad():
        short = encoder.prefix(short_audio[None], 2)[0]  # (C, F) run alone
        batch = torch.stack([long_audio, torch.nn.functional.pad(short_audio, (0, 4000))])  # (2, 8000)
        padded = encoder.prefix(batch, 2)[1, :, : short.shape[1]]  # its valid frames in a padded batch
    torch.testing.assert_close(cache.features[1], short)
    assert not torch.allclose(padded, short, atol=1e-3)  # why: padding changes a group-norm encoder's frames


def test_training_with_the_cache_logs_the_losses_of_training_without_it(tmp_path):
    pytest.importorskip("jiwer")
    from hf_w2v2.finetune import parse_finetune_args, run_finetuning

    def run(out: Path, *extra: str) -> list[float]:
        argv = [
            "--config_name",
            "tiny",
            "--config_overrides",
            '{"feat_extract_norm": "layer"}',
            "--train_data",
            str(FIXTURE / "train"),
            "--eval_data",
            str(FIXTURE / "dev"),
            "--output_dir",
            str(out),
            "--do_train",
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "3e-3",
            "--frozen_conv_layers",
            "4",
            "--mask_time_prob",
            "0.05",
            "--mask_time_length",
            "2",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--report_to",
            "none",
            "--seed",
            "0",
            "--disable_tqdm",
            "True",
            "--use_cpu",
            "True",
            "--preprocessing_num_workers",
            "1",
            *extra,
        ]
        result = run_finetuning(*parse_finetune_args(argv))
        state = json.loads((out / "trainer_state.json").read_text())
        losses = [row["loss"] for row in state["log_history"] if "loss" in row]
        return losses + [result.metrics["eval_loss"], result.metrics["eval_cer"]]

    plain = run(tmp_path / "plain")
    cached = run(tmp_path / "cached", "--cache_frozen_features", "True")
    assert len(plain) == 5
    assert json.loads((tmp_path / "cached" / "train_results.json").read_text())["train_cache_seconds"] > 0
    np.testing.assert_allclose(cached, plain, rtol=2e-4)
