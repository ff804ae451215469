"""Checkpoint formats: the Hub's facebook/wav2vec2-base layout (legacy config fields, weight_g/weight_v
in pytorch_model.bin), safetensors in both directions, untrusted pickles and fairseq conversion.
All folders are built here from stock transformers with seeded random weights; no network."""

from __future__ import annotations

import json
import re

import pytest
import torch
import transformers
from oracle import SMALL, audio_batch, config_kwargs, rel_diff
from safetensors.torch import load_file

import hf_w2v2
from hf_w2v2.models.interop import convert_fairseq_checkpoint, convert_fairseq_state_dict

TOL = 1e-4

# Fields of facebook/wav2vec2-base's config.json that today's config class no longer defines.
LEGACY_FIELDS = {
    "freeze_feat_extract_train": True,
    "gradient_checkpointing": True,
    "mask_channel_length": 10,
    "mask_channel_min_space": 1,
    "mask_channel_other": 0.0,
    "mask_channel_prob": 0.0,
    "mask_channel_selection": "static",
    "mask_time_min_space": 1,
    "mask_time_other": 0.0,
    "mask_time_selection": "static",
    "no_mask_channel_overlap": False,
    "no_mask_time_overlap": False,
    "architectures": ["Wav2Vec2ForPreTraining"],
    "transformers_version": "4.7.0.dev0",
}


def _stock_pretraining(family: str = "base") -> transformers.Wav2Vec2ForPreTraining:
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForPreTraining(transformers.Wav2Vec2Config(**config_kwargs(family))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _write_hub_legacy_folder(model: transformers.PreTrainedModel, folder) -> None:
    """config.json with legacy fields + pytorch_model.bin with weight_g/weight_v, as on the Hub."""
    config = model.config.to_dict()
    config.update(LEGACY_FIELDS)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        state[key] = value.clone()
    torch.save(state, folder / "pytorch_model.bin")


@pytest.fixture()
def hub_folder(tmp_path):
    stock = _stock_pretraining()
    _write_hub_legacy_folder(stock, tmp_path)
    assert any(k.endswith("weight_g") for k in torch.load(tmp_path / "pytorch_model.bin", weights_only=True))
    return tmp_path, stock


def test_hub_legacy_folder_loads_into_pretraining_with_no_key_problems(hub_folder):
    folder, stock = hub_folder
    model, info = hf_w2v2.Wav2Vec2ForPreTraining.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.freeze_feat_extract_train is True  # legacy fields are kept, not lost
    audio, _ = audio_batch([6000])
    model.eval()
    with torch.no_grad():
        assert rel_diff(model(audio).projected_states, stock(audio).projected_states) <= TOL


def test_hub_legacy_folder_loads_into_ctc_with_only_lm_head_missing(hub_folder):
    folder, stock = hub_folder
    model, info = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(folder, vocab_size=12, output_loading_info=True)
    assert set(info["missing_keys"]) == {"lm_head.weight", "lm_head.bias"}
    assert not info["mismatched_keys"]
    # Everything the encoder needs was loaded: its output equals the stock encoder's.
    audio, _ = audio_batch([6000])
    with torch.no_grad():
        mine = model.eval().wav2vec2(audio).last_hidden_state
        ref = stock.wav2vec2(audio).last_hidden_state
    assert rel_diff(mine, ref) <= TOL


def test_stock_safetensors_folder_loads_in_ours(tmp_path):
    stock = _stock_pretraining("large-lv60")
    stock.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert any("parametrizations" in k for k in load_file(tmp_path / "model.safetensors"))
    ours, info = hf_w2v2.Wav2Vec2ForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    audio, _ = audio_batch([6000])
    with torch.no_grad():
        assert rel_diff(ours.eval()(audio).projected_quantized_states, stock(audio).projected_quantized_states) <= TOL


@pytest.mark.parametrize("name", ["Wav2Vec2ForCTC", "Wav2Vec2ForSequenceClassification", "Wav2Vec2ForXVector"])
def test_our_checkpoint_is_standard_and_loads_in_stock_transformers(tmp_path, name):
    kwargs = config_kwargs("base")
    torch.manual_seed(1)
    ours = getattr(hf_w2v2, name)(hf_w2v2.Wav2Vec2Config(**kwargs)).eval()
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "wav2vec2"
    assert config["architectures"] == [name]
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "pytorch_model.bin").exists()
    stock, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    audio, _ = audio_batch([6000, 6000])
    with torch.no_grad():
        assert rel_diff(ours(audio).logits, stock.eval()(audio).logits) <= TOL
    # AutoModel resolves our checkpoint to the stock class without this package.
    auto = transformers.AutoModelForCTC if name == "Wav2Vec2ForCTC" else None
    if auto is not None:
        assert type(auto.from_pretrained(tmp_path)).__name__ == name


def test_untrusted_pickle_is_not_executed(tmp_path):
    """A .bin whose pickle would run code must be refused (weights_only=True)."""
    stock = _stock_pretraining()
    stock.config.save_pretrained(tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"wav2vec2.masked_spec_embed": Exploit()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the safe unpickler raises, nothing may run
        hf_w2v2.Wav2Vec2ForPreTraining.from_pretrained(tmp_path)
    assert not marker.exists()


# --- fairseq ----------------------------------------------------------------------------------
# Inverse of the documented fairseq -> Hugging Face mapping, written independently of hf_w2v2.models.interop.
_TO_FAIRSEQ = [
    (r"^wav2vec2\.feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^wav2vec2\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"^wav2vec2\.feature_projection\.projection\.", "post_extract_proj."),
    (r"^wav2vec2\.masked_spec_embed$", "mask_emb"),
    (r"^wav2vec2\.encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original0$", "encoder.pos_conv.0.weight_g"),
    (r"^wav2vec2\.encoder\.pos_conv_embed\.conv\.parametrizations\.weight\.original1$", "encoder.pos_conv.0.weight_v"),
    (r"^wav2vec2\.encoder\.pos_conv_embed\.conv\.bias$", "encoder.pos_conv.0.bias"),
    (r"^wav2vec2\.encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"^wav2vec2\.encoder\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"^wav2vec2\.encoder\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^wav2vec2\.encoder\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"^wav2vec2\.encoder\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
    (r"^wav2vec2\.encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
    (r"^quantizer\.codevectors$", "quantizer.vars"),
    (r"^project_hid\.", "final_proj."),
]


def _to_fairseq(state: dict, layer_norm_mode: bool) -> dict:
    out = {}
    for key, value in state.items():
        m = re.match(r"^wav2vec2\.feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)$", key)
        if m:
            index, leaf = m.groups()
            new = (
                f"feature_extractor.conv_layers.{index}.2.1.{leaf}"
                if layer_norm_mode
                else f"feature_extractor.conv_layers.{index}.2.{leaf}"
            )
        else:
            new = key
            for pattern, repl in _TO_FAIRSEQ:
                if re.search(pattern, key):
                    new = re.sub(pattern, repl, key)
                    break
        out[new] = value
    return out


def _fairseq_cfg(family: str) -> dict:
    k = SMALL
    dim = k["conv_dim"][0]
    # base: fairseq's own expression form (issue 23.13), and no extractor_mode (fairseq's default applies)
    layers = f"[({dim}, 10, 5)] + [({dim}, 3, 2)] * 4 + [({dim}, 2, 2)] * 2"
    if family == "large-lv60":
        layers = str([(dim, 10, 5)] + [(dim, 3, 2)] * 4 + [(dim, 2, 2)] * 2)
    extra = {"extractor_mode": "layer_norm"} if family == "large-lv60" else {}
    return dict(
        **extra,
        encoder_layers=k["num_hidden_layers"],
        encoder_embed_dim=k["hidden_size"],
        encoder_ffn_embed_dim=k["intermediate_size"],
        encoder_attention_heads=k["num_attention_heads"],
        conv_feature_layers=layers,
        conv_pos=config_kwargs(family)["num_conv_pos_embeddings"],
        conv_pos_groups=k["num_conv_pos_embedding_groups"],
        layer_norm_first=family == "large-lv60",
        conv_bias=family == "large-lv60",
        latent_vars=k["num_codevectors_per_group"],
        latent_groups=k["num_codevector_groups"],
        latent_dim=k["codevector_dim"],
        final_dim=k["proj_codevector_dim"],
        num_negatives=k["num_negatives"],
    )


@pytest.mark.parametrize("family", ["base", "large-lv60"])
def test_fairseq_pretrained_checkpoint_converts(tmp_path, family):
    stock = _stock_pretraining(family)
    fairseq_state = _to_fairseq(stock.state_dict(), family == "large-lv60")
    fairseq_state["encoder.version"] = torch.tensor([3.0])
    assert "encoder.layers.0.fc1.weight" in fairseq_state and "quantizer.vars" in fairseq_state
    torch.save({"model": fairseq_state, "cfg": {"model": _fairseq_cfg(family)}}, tmp_path / "w2v.pt")
    out = convert_fairseq_checkpoint(tmp_path / "w2v.pt", tmp_path / "hf")
    converted = hf_w2v2.Wav2Vec2ForPreTraining.from_pretrained(out).eval()
    audio, _ = audio_batch([6000])
    with torch.no_grad():
        ref, mine = stock(audio), converted(audio)
    assert rel_diff(mine.projected_states, ref.projected_states) <= TOL
    assert rel_diff(mine.projected_quantized_states, ref.projected_quantized_states) <= TOL


def test_fairseq_ctc_checkpoint_converts(tmp_path):
    torch.manual_seed(2)
    stock = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**config_kwargs("base"))).eval()
    encoder = {k: v for k, v in stock.state_dict().items() if not k.startswith("lm_head.")}
    fairseq_state = {"w2v_encoder.w2v_model." + k: v for k, v in _to_fairseq(encoder, False).items()}
    fairseq_state["w2v_encoder.proj.weight"] = stock.lm_head.weight.detach().clone()
    fairseq_state["w2v_encoder.proj.bias"] = stock.lm_head.bias.detach().clone()
    cfg = {"w2v_args": {"model": _fairseq_cfg("base")}}
    torch.save({"model": fairseq_state, "cfg": {"model": cfg}}, tmp_path / "ctc.pt")
    converted = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(convert_fairseq_checkpoint(tmp_path / "ctc.pt", tmp_path / "hf"))
    audio, _ = audio_batch([6000])
    with torch.no_grad():
        assert rel_diff(converted.eval()(audio).logits, stock(audio).logits) <= TOL


def test_fairseq_unknown_keys_are_reported_not_dropped():
    with pytest.raises(ValueError, match="unknown fairseq keys"):
        convert_fairseq_state_dict({"encoder.some_new_module.weight": torch.zeros(1)})


def test_convert_fairseq_command_line(tmp_path, capsys):
    from hf_w2v2.cli import main

    stock = _stock_pretraining()
    torch.save(
        {"model": _to_fairseq(stock.state_dict(), False), "cfg": {"model": _fairseq_cfg("base")}}, tmp_path / "w.pt"
    )
    assert main(["convert-fairseq", str(tmp_path / "w.pt"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert main(["convert-fairseq", str(tmp_path / "missing.pt"), str(tmp_path / "out2")]) == 2
    assert "no fairseq checkpoint" in capsys.readouterr().err


def test_fairseq_checkpoint_with_pickled_objects_needs_trust(tmp_path):
    import argparse

    stock = _stock_pretraining()
    args = argparse.Namespace(**_fairseq_cfg("base"))  # old fairseq files pickle their argparse args
    torch.save({"model": _to_fairseq(stock.state_dict(), False), "args": args}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="trust_pickle"):
        convert_fairseq_checkpoint(tmp_path / "old.pt", tmp_path / "out")
    out = convert_fairseq_checkpoint(tmp_path / "old.pt", tmp_path / "out", trust_pickle=True)
    assert (out / "model.safetensors").exists()
