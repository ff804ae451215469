"""examples/pretrain.py end to end on the fixture: JSON config + overrides, outputs, automatic resume."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from example_scripts import load_example

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"


def run(script, monkeypatch, argv: list[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["pretrain.py", *argv])
    script.main()


def test_json_config_with_overrides_trains_saves_and_resumes(tmp_path, monkeypatch):
    script = load_example("pretrain")
    config = tmp_path / "run.json"
    config.write_text(json.dumps({
        "config_name": "tiny",
        "config_overrides": json.dumps({"feat_extract_norm": "layer", "mask_time_prob": 0.65, "mask_time_length": 5}),
        "train_source": str(FIXTURES),
        "max_seconds": 1.0,
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 3,
        "max_steps": 100,
        "save_steps": 2,
        "logging_steps": 1,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
    }))
    run(script, monkeypatch, [str(config), "--max_steps", "2"])  # the command line wins over the file
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert "contrastive_accuracy" in state["log_history"][0] and "gumbel_temperature" in state["log_history"][0]

    run(script, monkeypatch, [str(config), "--max_steps", "3"])  # picks up checkpoint-2 by itself
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3]


def test_missing_source_and_model_are_clear_errors(tmp_path, monkeypatch):
    script = load_example("pretrain")
    with pytest.raises(ValueError, match="train_source"):
        run(script, monkeypatch, ["--config_name", "tiny", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="config_name"):
        run(script, monkeypatch, ["--train_source", str(FIXTURES), "--output_dir", str(tmp_path)])


def test_extra_train_sources_are_added():
    script = load_example("pretrain")
    data = script.DataArguments(train_source=str(FIXTURES), max_seconds=1.0, min_seconds=0.0)
    one = script.load_audio_set([str(FIXTURES)], data, seed=0)
    two = script.load_audio_set([str(FIXTURES), str(FIXTURES)], data, seed=0)
    assert len(one) > 0 and len(two) == 2 * len(one)
