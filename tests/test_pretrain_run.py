"""Pre-training end to end on the fixture (hf_w2v2.pretrain.run): recipe + overrides, outputs, automatic resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_w2v2.pretrain import parse_pretrain_args, run_pretraining
from hf_w2v2.pretrain.arguments import DataArguments
from hf_w2v2.pretrain.run import load_audio_set

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"


def run(argv: list[str]) -> None:
    run_pretraining(*parse_pretrain_args(argv))


def test_json_config_with_overrides_trains_saves_and_resumes(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps(
            {
                "config_name": "tiny",
                "config_overrides": json.dumps(
                    {"feat_extract_norm": "layer", "mask_time_prob": 0.65, "mask_time_length": 5}
                ),
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
            }
        )
    )
    run([str(config), "--max_steps", "2"])  # the command line wins over the file
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert "contrastive_accuracy" in state["log_history"][0] and "gumbel_temperature" in state["log_history"][0]
    card = (out / "README.md").read_text()  # the shared finish (hf_w2v2.training.lifecycle): card, results, curves
    assert "pretraining" in card and "examples/pretrain.py" in card and "Training hyper-parameters" in card
    assert "health_warnings" in json.loads((out / "all_results.json").read_text())

    template = tmp_path / "card.md"  # a custom card template works for every job, not only CTC
    template.write_text("# $model_name\n\n$sections\n\nOur own footer.\n")
    run([str(config), "--max_steps", "3", "--card_template", str(template)])  # picks up checkpoint-2 by itself
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    card = (out / "README.md").read_text()
    assert card.startswith("# out\n\n## Evaluation (held-out audio)") and card.endswith("\n\nOur own footer.\n")
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3]


def test_missing_source_and_model_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="train_source"):
        run(["--config_name", "tiny", "--output_dir", str(tmp_path)])
    with pytest.raises(ValueError, match="config_name"):
        run(["--train_source", str(FIXTURES), "--output_dir", str(tmp_path)])


def test_extra_train_sources_are_added():
    data = DataArguments(train_source=str(FIXTURES), max_seconds=1.0, min_seconds=0.0)
    one = load_audio_set([str(FIXTURES)], data, seed=0)
    two = load_audio_set([str(FIXTURES), str(FIXTURES)], data, seed=0)
    assert len(one) > 0 and len(two) == 2 * len(one)


def test_init_from_continues_from_a_checkpoint(tmp_path):
    """``--init_from`` (alias of --model_name_or_path) starts a new run from saved weights."""
    base = [
        "--train_source",
        str(FIXTURES),
        "--max_seconds",
        "1.0",
        "--per_device_train_batch_size",
        "3",
        "--report_to",
        "none",
        "--use_cpu",
        "True",
        "--disable_tqdm",
        "True",
        "--save_strategy",
        "no",
        "--config_overrides",
        json.dumps({"feat_extract_norm": "layer", "mask_time_prob": 0.65, "mask_time_length": 5}),
    ]
    run(["--config_name", "tiny", "--output_dir", str(tmp_path / "a"), "--max_steps", "1", *base])
    model_args, *_ = parse_pretrain_args(
        ["--init_from", str(tmp_path / "a"), "--output_dir", str(tmp_path / "b"), *base]
    )
    assert model_args.model_name_or_path == str(tmp_path / "a") and model_args.config_name is None
    run(["--init_from", str(tmp_path / "a"), "--output_dir", str(tmp_path / "b"), "--max_steps", "1", *base])
    state = json.loads((tmp_path / "b" / "trainer_state.json").read_text())
    assert state["global_step"] == 1  # a new run: the step count starts again
