"""Damaged weights are named at load (issue 23.6): 4 kB of 0xFF in ``model.safetensors`` used to load, output NaN
and print empty transcripts with exit code 0. ``from_pretrained`` loads them with a loud warning, as stock
transformers loads them (issue 35, drop-in); hf_w2v2's own tools refuse them with ``check_finite_weights``."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch
from fixtures.decoding.tiny import save_model_folder

from hf_w2v2 import Wav2Vec2ForCTC
from hf_w2v2.cli import main
from hf_w2v2.models.configuration import config_from_name
from hf_w2v2.models.integrity import NonFiniteWeightsError, check_finite_weights, nonfinite_tensors

FIXTURES = Path(__file__).parent / "fixtures"


def _damage(weights: Path, offset: int = 64, size: int = 4096) -> None:
    """Overwrite ``size`` bytes of tensor data (after the safetensors header) with 0xFF (a NaN in float32)."""
    data = bytearray(weights.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    start = 8 + header + offset
    data[start : start + size] = b"\xff" * size
    weights.write_bytes(bytes(data))


def test_nonfinite_weights_load_with_a_warning_and_the_check_refuses_them(tmp_path: Path, caplog) -> None:
    model = Wav2Vec2ForCTC(config_from_name("tiny"))
    model.save_pretrained(tmp_path)
    assert nonfinite_tensors(Wav2Vec2ForCTC.from_pretrained(tmp_path)) == {}
    _damage(tmp_path / "model.safetensors")
    loaded = Wav2Vec2ForCTC.from_pretrained(tmp_path)  # drop-in: stock loads them too
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "hold NaN or inf values" in warning and "LOADED ANYWAY" in warning
    assert list(nonfinite_tensors(loaded))[0] in warning
    with pytest.raises(NonFiniteWeightsError, match=r"weight tensor\(s\) hold NaN or inf values") as info:
        check_finite_weights(loaded, tmp_path)
    assert info.value.tensors and sum(info.value.tensors.values()) >= 1000  # 4096 bytes -> ~1024 float32
    assert all(name in str(info.value) for name in list(info.value.tensors)[:3])
    assert isinstance(info.value, ValueError)


def test_transcribe_with_damaged_weights_exits_2_with_the_message(tmp_path: Path, capsys) -> None:
    save_model_folder(tmp_path)
    _damage(tmp_path / "model.safetensors")
    audio = str(FIXTURES / "decoding" / "utt1.flac")
    assert main(["transcribe", audio, "--model", str(tmp_path), "--quiet"]) == 2
    assert "hold NaN or inf values" in capsys.readouterr().err


def test_finite_check_ignores_integer_buffers() -> None:
    module = torch.nn.Module()
    module.register_buffer("steps", torch.tensor([1, 2], dtype=torch.long))
    module.register_buffer("scale", torch.tensor([1.0, float("inf")]))
    assert nonfinite_tensors(module) == {"scale": 1}
