"""Broken models and configs fail at load with a message naming the file and field (issue 35):
config.json that does not match the weights, damaged weight and adapter files, impossible config
values, absurd sizes, typos in config_overrides; legitimate loads (other heads, new language
adapters, transformers' own "every weight missing" test) keep working."""

from __future__ import annotations

import collections
import json
import os
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from hf_w2v2 import Wav2Vec2ForCTC, Wav2Vec2ForPreTraining, Wav2Vec2ForSequenceClassification, Wav2Vec2Model
from hf_w2v2.models.configuration import Wav2Vec2Config, check_override_names, tiny
from hf_w2v2.models.integrity import NonFiniteWeightsError
from hf_w2v2.models.loading import ConfigWeightsMismatchError


def _saved(folder: Path, cls=Wav2Vec2ForCTC, **fields) -> Path:
    torch.manual_seed(0)
    cls(tiny(vocab_size=12, **fields)).save_pretrained(folder)
    return folder


def _edit_config(folder: Path, **fields) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(fields)
    (folder / "config.json").write_text(json.dumps(config))


# --- config.json against the weights ------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "says"),
    [
        (
            {"num_hidden_layers": 1},
            "the weights hold encoder tensors the config does not build: wav2vec2.encoder.layers.1",
        ),
        (
            {"num_hidden_layers": 0},
            "the weights hold encoder tensors the config does not build: wav2vec2.encoder.layers.{0, 1}.* (32 tensors)",
        ),
        ({"num_hidden_layers": 3}, "the config builds encoder tensors the weights lack: wav2vec2.encoder.layers.2"),
        (
            {"feat_extract_norm": "layer"},
            "weights lack: wav2vec2.feature_extractor.conv_layers.{1, 2, 3, 4, 5, 6}.layer_norm.*",
        ),
    ],
)
def test_config_that_does_not_match_the_weights_is_refused(tmp_path, fields, says):
    _edit_config(_saved(tmp_path), **fields)
    with pytest.raises(ConfigWeightsMismatchError, match="config.json does not match the weights") as error:
        Wav2Vec2ForCTC.from_pretrained(tmp_path)
    assert says in str(error.value) and str(tmp_path) in str(error.value)
    assert "num_hidden_layers" in str(error.value) and "feat_extract_norm" in str(error.value)


def test_layer_norm_weights_under_a_group_norm_config_are_refused(tmp_path):
    _saved(tmp_path, feat_extract_norm="layer", do_stable_layer_norm=True)
    _edit_config(tmp_path, feat_extract_norm="group", do_stable_layer_norm=False)
    with pytest.raises(ConfigWeightsMismatchError, match=r"conv_layers.\{1, 2, 3, 4, 5, 6\}.layer_norm"):
        Wav2Vec2Model.from_pretrained(tmp_path)


def test_hidden_size_mismatch_is_named_as_a_config_mismatch(tmp_path):
    _edit_config(_saved(tmp_path), hidden_size=64, num_conv_pos_embedding_groups=2)
    with pytest.raises(ConfigWeightsMismatchError, match="tensor shapes differ"):
        Wav2Vec2ForCTC.from_pretrained(tmp_path)


def test_legitimate_partial_loads_still_work(tmp_path):
    _saved(tmp_path / "pre", Wav2Vec2ForPreTraining, mask_time_prob=0.0)
    ctc, info = Wav2Vec2ForCTC.from_pretrained(tmp_path / "pre", vocab_size=12, output_loading_info=True)
    assert set(info["missing_keys"]) == {"lm_head.weight", "lm_head.bias"}
    assert any(k.startswith("quantizer.") for k in info["unexpected_keys"])
    Wav2Vec2Model.from_pretrained(tmp_path / "pre", mask_time_prob=0.1)  # a new mask embedding
    new = Wav2Vec2ForCTC.from_pretrained(
        tmp_path / "pre", vocab_size=12, do_stable_layer_norm=True, feat_extract_norm="group", adapter_attn_dim=8
    )  # new MMS adapters on a pre-LN encoder: only adapter keys are new
    assert torch.isfinite(new.wav2vec2.encoder.layers[0].adapter_layer.linear_1.weight).all()


# --- transformers' test_model_weights_reload_no_missing_tied_weights, with our classes ---------------
@pytest.mark.parametrize("robust", [False, True], ids=["Model", "Robust"])
def test_every_weight_missing_loads_like_stock_and_reports_every_key(tmp_path, robust):
    """The check transformers' ``ModelTesterMixin`` makes (Wav2Vec2ModelTest and Wav2Vec2RobustModelTest):
    a weights file holding none of the model's tensors loads, every parameter is reported missing, no
    other key is, and nothing is left uninitialised (NaN) by the loader."""
    norm = dict(do_stable_layer_norm=True, feat_extract_norm="layer") if robust else {}
    config = tiny(vocab_size=12, num_labels=3, **norm)
    for cls in (Wav2Vec2ForCTC, Wav2Vec2Model, Wav2Vec2ForSequenceClassification, Wav2Vec2ForPreTraining):
        folder = tmp_path / cls.__name__
        cls(config).save_pretrained(folder)
        save_file(
            {"tensor": torch.tensor([1, 2])}, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"}
        )
        reloaded, infos = cls.from_pretrained(folder, output_loading_info=True)
        params = dict(reloaded.named_parameters()) | dict(reloaded.named_buffers())
        missing = set(infos["missing_keys"])
        storages = collections.defaultdict(list)
        for name, tensor in reloaded.state_dict().items():
            storages[tensor.untyped_storage().data_ptr()].append(name)
        tied = [names for names in storages.values() if len(names) > 1]
        extra = missing - set(params)
        for group in tied:
            if set(group) - extra:
                extra -= set(group)
        assert extra == set(), cls
        persistent = set(reloaded.state_dict())
        assert {n for n in set(params) - missing if n in persistent} == set(), cls
        assert all(torch.isfinite(p).all() for p in reloaded.parameters()), cls


# --- damaged files --------------------------------------------------------------------------------
def test_truncated_weights_file_names_the_file(tmp_path):
    weights = _saved(tmp_path) / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    with pytest.raises(OSError, match=r"model.safetensors\) is damaged or truncated"):
        Wav2Vec2ForCTC.from_pretrained(tmp_path)


def _mms(folder: Path) -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny(vocab_size=12, adapter_attn_dim=8, do_stable_layer_norm=True))
    model.save_pretrained(folder)
    save_file({k: v.detach().clone() for k, v in model._get_adapters().items()}, folder / "adapter.fra.safetensors")
    return Wav2Vec2ForCTC.from_pretrained(folder)


def test_adapter_with_nan_is_refused(tmp_path):
    model = _mms(tmp_path)
    state = load_file(tmp_path / "adapter.fra.safetensors")
    state["lm_head.bias"][3] = float("nan")
    save_file(state, tmp_path / "adapter.fra.safetensors")
    before = model.lm_head.bias.detach().clone()
    with pytest.raises(NonFiniteWeightsError, match=r"adapter.fra.safetensors: 1 weight tensor\(s\).*lm_head.bias"):
        model.load_adapter("fra")
    assert torch.equal(model.lm_head.bias, before)  # nothing was changed


def test_truncated_adapter_file_names_it(tmp_path):
    model = _mms(tmp_path)
    path = tmp_path / "adapter.fra.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(OSError, match=r"adapter file .*adapter.fra.safetensors is damaged or truncated"):
        model.load_adapter("fra")


def test_load_adapter_after_the_folder_was_removed_names_the_folder(tmp_path):
    model = _mms(tmp_path / "mms")
    for path in (tmp_path / "mms").iterdir():
        path.unlink()
    (tmp_path / "mms").rmdir()
    with pytest.raises(FileNotFoundError, match="the model folder .*mms it was loaded from no longer exists"):
        model.load_adapter("fra")


# --- impossible values -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"conv_dim": None}, "config field conv_dim must be a list of positive integers, got None"),
        ({"pad_token_id": 40}, r"pad_token_id \(40\) is outside the vocabulary \(vocab_size 12\)"),
        ({"pad_token_id": "0"}, "pad_token_id must be a non-negative integer .* got '0'"),
        ({"num_hidden_layers": 1_000_000}, "num_hidden_layers is 1000000, above the limit of 1024"),
        ({"intermediate_size": 10**9}, "about 128 G parameters .* above the limit of 10 G"),
        ({"conv_dim": [16] * 100, "conv_stride": [1] * 100, "conv_kernel": [1] * 100}, "conv_dim has 100 layers"),
    ],
)
def test_impossible_config_values_fail_fast_naming_file_and_field(tmp_path, content, says):
    _edit_config(_saved(tmp_path), **content)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=says) as error:
        Wav2Vec2ForCTC.from_pretrained(tmp_path)
    assert time.perf_counter() - start < 10  # used to build for minutes
    assert str(tmp_path / "config.json") in str(error.value)


def test_config_json_holding_a_list_is_refused(tmp_path):
    config = json.loads((_saved(tmp_path) / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps([config]))
    with pytest.raises(ValueError, match=r"config.json must hold a JSON object of config fields, got a JSON list"):
        Wav2Vec2ForCTC.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="must hold a JSON object"):
        Wav2Vec2Config.from_pretrained(tmp_path)


def test_config_overrides_typo_is_named_with_a_suggestion():
    from hf_w2v2.finetune.arguments import ModelArguments as FinetuneModel
    from hf_w2v2.pretrain.arguments import ModelArguments as PretrainModel

    check_override_names({"hidden_size": 64, "num_labels": 3, "mask_time_prob": 0.1})
    for cls in (FinetuneModel, PretrainModel):
        args = cls(config_name="tiny", config_overrides='{"hiden_size": 64}')
        with pytest.raises(ValueError, match="unknown config field.*'hiden_size' \\(did you mean 'hidden_size'\\?\\)"):
            args.overrides()


def test_the_trainers_refuse_nan_starting_weights(tmp_path):
    from hf_w2v2.classify.model import build_classifier
    from hf_w2v2.finetune.model import build_ctc_model
    from hf_w2v2.pretrain.arguments import ModelArguments
    from hf_w2v2.pretrain.run import load_model

    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(tiny(vocab_size=12))
    with torch.no_grad():
        model.wav2vec2.encoder.layers[0].attention.q_proj.weight[0, 0] = float("inf")
    model.save_pretrained(tmp_path)
    name = r"wav2vec2.encoder.layers.0.attention.q_proj.weight \(1 values\)"
    with pytest.raises(NonFiniteWeightsError, match=name):
        build_ctc_model(12, 0, model_name_or_path=str(tmp_path))
    with pytest.raises(NonFiniteWeightsError, match=name):
        load_model(ModelArguments(model_name_or_path=str(tmp_path)))
    with pytest.raises(NonFiniteWeightsError, match=name):
        build_classifier("sequence", ["a", "b"], model_name_or_path=str(tmp_path))
