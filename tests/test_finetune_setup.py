"""Arguments (config file + CLI), model building (head sizing, freezing), resume vocabulary checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from hf_w2v2 import Wav2Vec2ForCTC, Wav2Vec2ForPreTraining
from hf_w2v2.finetune.arguments import CTCModelArguments, parse_finetune_args
from hf_w2v2.finetune.model import build_ctc_model
from hf_w2v2.finetune.resume import check_resume_vocabulary, vocabulary_difference
from hf_w2v2.models.configuration import config_from_name, tiny
from hf_w2v2.training.checkpoints import resolve_checkpoint
from hf_w2v2.training.model_setup import describe_frozen_encoder

yaml = pytest.importorskip("yaml")


def test_yaml_config_then_command_line_overrides(tmp_path):
    recipe = {
        "config_name": "tiny",
        "train_data": "data/train",
        "output_dir": str(tmp_path / "out"),
        "learning_rate": 0.003,
        "mask_time_prob": 0.02,
        "config_overrides": {"hidden_size": 48},
        "test_data": ["real=data/real", "data/other"],
        "train_sampling_strategy": "group_by_length",
        "eval_strategy": "steps",
        "eval_steps": 7,
        "bf16": False,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    model_args, data_args, card_args, training_args = parse_finetune_args([str(path), "--learning_rate", "0.01"])
    assert training_args.learning_rate == 0.01  # CLI wins
    assert training_args.eval_steps == 7 and training_args.train_sampling_strategy == "group_by_length"
    assert model_args.overrides() == {"mask_time_prob": 0.02, "hidden_size": 48}
    assert data_args.named_test_sets() == [("real", "data/real"), ("other", "data/other")]
    assert card_args.language == "en"
    json_path = tmp_path / "recipe.json"
    json_path.write_text(json.dumps(recipe))
    assert parse_finetune_args([str(json_path)])[3].learning_rate == 0.003


def test_model_arguments_need_exactly_one_source():
    with pytest.raises(ValueError, match="not both"):
        CTCModelArguments(model_name_or_path="x", config_name="tiny")
    with pytest.raises(ValueError, match="config_name"):
        CTCModelArguments()


def test_config_from_name_presets_and_files(tmp_path):
    assert config_from_name("tiny", hidden_size=64).hidden_size == 64
    tiny(hidden_size=48).save_pretrained(tmp_path)
    assert config_from_name(str(tmp_path)).hidden_size == 48
    with pytest.raises(ValueError, match="preset"):
        config_from_name("no-such-thing")


def test_random_init_sizes_head_and_trains_feature_encoder():
    model = build_ctc_model(30, 0, config_name="tiny", overrides={"layerdrop": 0.0, "ctc_zero_infinity": True})
    assert model.lm_head.out_features == 30 and model.config.pad_token_id == 0
    assert model.config.ctc_zero_infinity and model.config.layerdrop == 0.0
    assert all(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())


def test_pretrained_encoder_gets_a_new_head_and_a_frozen_feature_encoder(tmp_path):
    torch.manual_seed(0)
    pretrained = Wav2Vec2ForPreTraining(tiny())
    pretrained.save_pretrained(tmp_path / "pt")
    model = build_ctc_model(12, 0, model_name_or_path=str(tmp_path / "pt"), overrides={"mask_time_prob": 0.1})
    assert model.lm_head.out_features == 12 and model.config.mask_time_prob == 0.1
    assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters())
    assert any(p.requires_grad for p in model.wav2vec2.encoder.parameters())
    torch.testing.assert_close(
        model.wav2vec2.feature_projection.projection.weight, pretrained.wav2vec2.feature_projection.projection.weight
    )
    unfrozen = build_ctc_model(12, 0, model_name_or_path=str(tmp_path / "pt"), freeze_feature_encoder=False)
    assert all(p.requires_grad for p in unfrozen.wav2vec2.feature_extractor.parameters())


def test_frozen_conv_layers_freezes_only_the_first_blocks_and_their_gradients_stay_none():
    torch.manual_seed(0)
    model = build_ctc_model(12, 0, config_name="tiny", overrides={"mask_time_prob": 0.0}, frozen_conv_layers=2)
    blocks = model.wav2vec2.feature_extractor.conv_layers
    assert [all(not p.requires_grad for p in b.parameters()) for b in blocks] == [i < 2 for i in range(len(blocks))]
    audio = torch.randn(2, 4000)
    labels = torch.tensor([[3, 4, 5], [6, 7, -100]])
    model(audio, labels=labels).loss.backward()
    assert all(p.grad is None for b in blocks[:2] for p in b.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for b in blocks[2:] for p in b.parameters())
    with pytest.raises(ValueError, match="num_layers"):
        model.freeze_feature_encoder(len(blocks) + 1)
    assert describe_frozen_encoder(model) == f"first 2 of {len(blocks)} conv blocks frozen"
    model.freeze_feature_encoder()
    assert describe_frozen_encoder(model) == f"all {len(blocks)} conv blocks frozen"
    assert describe_frozen_encoder(build_ctc_model(12, 0, config_name="tiny")) == "trained"


def test_ctc_model_with_another_vocabulary_gets_a_resized_head(tmp_path):
    torch.manual_seed(0)
    Wav2Vec2ForCTC(tiny(vocab_size=20)).save_pretrained(tmp_path / "ctc")
    model = build_ctc_model(31, 0, model_name_or_path=str(tmp_path / "ctc"))
    assert model.lm_head.weight.shape[0] == 31 and model.config.vocab_size == 31


def test_resume_refuses_a_different_vocabulary(tmp_path):
    ckpt = tmp_path / "out" / "checkpoint-10"
    ckpt.mkdir(parents=True)
    saved = {"[PAD]": 0, "[UNK]": 1, "|": 2, "A": 3, "B": 4}
    (ckpt / "vocab.json").write_text(json.dumps(saved))
    check_resume_vocabulary(ckpt, dict(saved))  # same vocabulary: fine
    with pytest.raises(ValueError, match=r"vocabulary differs.*only in the new vocabulary: \['C'\]"):
        check_resume_vocabulary(ckpt, {**saved, "C": 5})
    swapped = {**saved, "A": 4, "B": 3}
    assert "different ids" in vocabulary_difference(saved, swapped)
    (ckpt / "trainer_state.json").write_text("{}")  # a complete checkpoint: trainer state and weights
    save_file({"lm_head.bias": torch.zeros(5)}, ckpt / "model.safetensors")
    assert resolve_checkpoint("latest", str(tmp_path / "out")).endswith("checkpoint-10")
    assert resolve_checkpoint(None, str(tmp_path / "out")) is None
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resolve_checkpoint(True, str(tmp_path / "empty"))
    (tmp_path / "bare").mkdir()
    with pytest.raises(ValueError, match="no vocab.json"):
        check_resume_vocabulary(tmp_path / "bare", saved)


def test_empty_config_name_from_the_command_line_clears_the_recipe_value(tmp_path):
    """`recipe.yaml --model_name_or_path PT --config_name ""` switches a random-init recipe to a checkpoint."""
    Wav2Vec2ForPreTraining(tiny()).save_pretrained(tmp_path / "pt")
    CTCModelArguments(model_name_or_path=str(tmp_path / "pt"), config_name="")
    model = build_ctc_model(12, 0, model_name_or_path=str(tmp_path / "pt"), config_name="")
    assert model.lm_head.out_features == 12
    with pytest.raises(ValueError, match="exactly one"):
        build_ctc_model(12, 0, model_name_or_path="", config_name="")
