"""Drop-in behaviour a user switching from transformers relies on: gradient-checkpointing options and
when (and how) a config is validated. Stock transformers is the oracle where it defines the behaviour."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from oracle import audio_batch, config_kwargs, rel_diff
from transformers import GradientCheckpointingLayer

import hf_w2v2
from hf_w2v2.models.feature_encoder import ConvBlock
from hf_w2v2.models.transformer import TransformerBlock

NO_DROPOUT = dict(
    layerdrop=0.0,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    final_dropout=0.0,
    mask_time_prob=0.0,
)


def _flags(model: torch.nn.Module) -> dict[str, bool]:
    return {n: m.gradient_checkpointing for n, m in model.named_modules() if hasattr(m, "gradient_checkpointing")}


# --- gradient checkpointing -----------------------------------------------------------------------
@pytest.mark.parametrize("every_n_layers", [1, 2])
def test_checkpointed_blocks_are_reported_like_stock(every_n_layers):
    kwargs = config_kwargs("large-lv60")
    stock = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**kwargs))
    ours = hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(**kwargs))
    assert not ours.is_gradient_checkpointing
    assert any(isinstance(m, GradientCheckpointingLayer) for m in ours.modules())
    for model in (stock, ours):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True}, every_n_layers=2)
        model.gradient_checkpointing_enable(every_n_layers=every_n_layers)
    assert ours.is_gradient_checkpointing
    assert _flags(ours) == _flags(stock)
    for model in (stock, ours):
        model.gradient_checkpointing_disable()
    assert not ours.is_gradient_checkpointing and not any(_flags(ours).values())


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpointing_kwargs_reach_every_block_and_keep_the_gradients(use_reentrant):
    torch.manual_seed(0)
    config = hf_w2v2.Wav2Vec2Config(**config_kwargs("large-lv60", **NO_DROPOUT))
    audio, mask = audio_batch([6000, 5000])
    labels = torch.tensor([[3, 4, 5], [6, 7, -100]])
    grads, calls = [], []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = hf_w2v2.Wav2Vec2ForCTC(config).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
            blocks = [m for m in model.modules() if isinstance(m, (TransformerBlock, ConvBlock))]
            assert len(blocks) == 3 + 7
            for block in blocks:
                assert block.gradient_checkpointing
                assert block._gradient_checkpointing_func.keywords == {"use_reentrant": use_reentrant}
        runs: list[int] = []
        model.wav2vec2.encoder.layers[0].attention.register_forward_hook(lambda *_, runs=runs: runs.append(1))
        model(audio, attention_mask=mask, labels=labels).loss.backward()
        calls.append(len(runs))
        assert model.wav2vec2.feature_extractor.conv_layers[0].conv.weight.grad.abs().sum() > 0
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert calls == [1, 2]  # the checkpointed block ran again in the backward pass
    assert grads[0].shape == grads[1].shape
    assert rel_diff(grads[1], grads[0]) <= 1e-5


def test_reentrant_checkpointing_with_a_frozen_feature_encoder():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(**config_kwargs("large-lv60", **NO_DROPOUT))).train()
    model.freeze_feature_encoder()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    audio, _ = audio_batch([6000])
    model(audio, labels=torch.tensor([[3, 4]])).loss.backward()
    assert all(p.grad is None for p in model.wav2vec2.feature_extractor.parameters())
    assert model.wav2vec2.encoder.layers[0].attention.q_proj.weight.grad.abs().sum() > 0


# --- config validation: when and how -----------------------------------------------------------------
def test_config_accepts_inconsistent_fields_until_a_model_is_built(tmp_path):
    for lib in (transformers, hf_w2v2):  # stock accepts the config too
        config = lib.Wav2Vec2Config(hidden_size=37)
        again = lib.Wav2Vec2Config.from_dict(json.loads(config.to_json_string()))
        assert again.hidden_size == 37
    config = hf_w2v2.Wav2Vec2Config(hidden_size=37)
    config.save_pretrained(tmp_path)
    assert hf_w2v2.Wav2Vec2Config.from_pretrained(tmp_path).to_dict() == config.to_dict()
    with pytest.raises(ValueError, match=r"hidden_size \(37\) must be divisible by num_attention_heads \(12\)"):
        hf_w2v2.Wav2Vec2Model(config)


def test_fields_can_be_set_in_either_order_before_building():
    first = hf_w2v2.Wav2Vec2Config(hidden_size=32, num_conv_pos_embedding_groups=4, num_hidden_layers=1)
    first.num_attention_heads = 4
    second = hf_w2v2.Wav2Vec2Config(num_attention_heads=4, num_conv_pos_embedding_groups=4, num_hidden_layers=1)
    second.hidden_size = 32
    for config in (first, second):
        model = hf_w2v2.Wav2Vec2Model(config)
        assert model.encoder.layers[0].attention.num_heads == 4


def test_conv_lengths_are_still_checked_at_construction_like_stock():
    for lib in (transformers, hf_w2v2):
        with pytest.raises(Exception, match="conv"):
            lib.Wav2Vec2Config(conv_dim=(32, 32), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("num_hidden_layers", -1, "a non-negative integer"),
        ("num_hidden_layers", "3", "a non-negative integer"),
        ("hidden_size", 48.0, "a positive integer"),
        ("layerdrop", 1.5, r"a number in \[0, 1\]"),
        ("mask_time_prob", "0.05", r"a number in \[0, 1\]"),
        ("conv_dim", [32, 32, 32, 0, 32, 32, 32], "a non-empty list of positive integers"),
        ("vocab_size", 0, "None or a positive integer"),
        ("do_stable_layer_norm", "yes", "true or false"),
        ("layer_norm_eps", 0.0, "a positive number"),
    ],
)
def test_bad_config_json_is_refused_at_load_naming_file_and_field(tmp_path, field, value, expected):
    torch.manual_seed(0)
    hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(**config_kwargs("base"))).save_pretrained(tmp_path)
    fields = json.loads((tmp_path / "config.json").read_text())
    fields[field] = value
    (tmp_path / "config.json").write_text(json.dumps(fields))
    with pytest.raises(ValueError, match=f"config.json: config field {field} must be {expected}, got") as error:
        hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_a_config_edited_after_construction_is_checked_when_the_model_is_built():
    config = hf_w2v2.Wav2Vec2Config(**config_kwargs("base"))
    config.num_hidden_layers = -1
    with pytest.raises(ValueError, match="num_hidden_layers must be a non-negative integer, got -1"):
        hf_w2v2.Wav2Vec2ForCTC(config)
    config.num_hidden_layers = 0  # allowed, as in stock: a frame-local model
    assert len(hf_w2v2.Wav2Vec2ForCTC(config).wav2vec2.encoder.layers) == 0
