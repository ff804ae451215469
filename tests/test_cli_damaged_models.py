"""The command line with broken model folders (issue 35): each case exits 2 with ``error: ...`` naming the
file or field and what to do, where it used to print a traceback (or a wrong result)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures.decoding.tiny import save_model_folder
from test_checkpoints import _fairseq_cfg, _stock_pretraining, _to_fairseq

import hf_w2v2
from hf_w2v2.cli import main
from hf_w2v2.models.configuration import tiny

AUDIO = str(Path(__file__).parent / "fixtures" / "decoding" / "utt1.flac")


def _run(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_transcribe_with_a_truncated_weights_file(tmp_path, capsys):
    save_model_folder(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    err = _run(["transcribe", AUDIO, "--model", str(tmp_path), "--quiet"], capsys)
    assert "a weights file (model.safetensors) is damaged or truncated" in err and str(tmp_path) in err


def test_transcribe_with_a_pad_token_id_that_is_not_the_pad_token(tmp_path, capsys):
    save_model_folder(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "pad_token_id": 5}))
    err = _run(["transcribe", AUDIO, "--model", str(tmp_path), "--quiet"], capsys)
    assert "pad_token_id (5, the CTC blank) is not the tokenizer's pad token ('[PAD]' = 0" in err


@pytest.mark.parametrize("remove", ["model.safetensors", "config.json"])
def test_export_of_an_incomplete_folder_names_what_is_missing(tmp_path, capsys, remove):
    save_model_folder(tmp_path)
    (tmp_path / remove).unlink()
    err = _run(["export", str(tmp_path), str(tmp_path / "m.onnx")], capsys)
    assert f"model folder {tmp_path} is incomplete: missing" in err and remove in err


def test_export_refuses_nan_weights(tmp_path, capsys):
    save_model_folder(tmp_path)
    model = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    with torch.no_grad():
        model.lm_head.bias[0] = float("nan")
    model.save_pretrained(tmp_path)
    err = _run(["export", str(tmp_path), str(tmp_path / "m.onnx")], capsys)
    assert "lm_head.bias (1 values)" in err and "hold NaN or inf values" in err


@pytest.mark.parametrize("command", ["verify", "embed"])
def test_verify_and_embed_with_a_classifier_say_an_xvector_model_is_needed(tmp_path, capsys, command):
    torch.manual_seed(0)
    hf_w2v2.Wav2Vec2ForSequenceClassification(tiny(num_labels=2)).save_pretrained(tmp_path)
    argv = [command, str(tmp_path), AUDIO, AUDIO] + (
        ["--output", str(tmp_path / "e.npz")] if command == "embed" else []
    )
    err = _run(argv, capsys)
    assert "is a Wav2Vec2ForSequenceClassification" in err and "need an x-vector model (Wav2Vec2ForXVector)" in err


@pytest.mark.parametrize("family", ["base", "large-lv60"], ids=["group-norm", "layer-norm"])
def test_convert_fairseq_without_quantized_targets_is_named(tmp_path, capsys, family):
    stock = _stock_pretraining(family)
    state = {k: v for k, v in _to_fairseq(stock.state_dict(), family == "large-lv60").items() if "quantizer" not in k}
    embed = stock.config.conv_dim[-1]
    state["project_q.weight"] = torch.randn(stock.config.proj_codevector_dim, embed)  # fairseq: features -> final_dim
    cfg = {**_fairseq_cfg(family), "quantize_targets": False}
    torch.save({"model": state, "cfg": {"model": cfg}}, tmp_path / "w2v.pt")
    err = _run(["convert-fairseq", str(tmp_path / "w2v.pt"), str(tmp_path / "hf")], capsys)
    assert "was pre-trained with quantize_targets=False" in err
