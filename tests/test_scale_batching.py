"""Both trainers with lazy data and batches by audio seconds (issue 24 items 1 and 3), end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")
pytest.importorskip("jiwer")

from hf_w2v2.finetune import parse_finetune_args, run_finetuning
from hf_w2v2.pretrain import parse_pretrain_args, run_pretraining

FIXTURES = Path(__file__).parent / "fixtures"


def _finetune(out: Path, *extra: str) -> dict:
    argv = [
        "--config_name", "tiny",
        "--config_overrides", '{"feat_extract_norm": "layer"}',
        "--train_data", str(FIXTURES / "finetune" / "train"),
        "--output_dir", str(out),
        "--do_train",
        "--max_steps", "4",
        "--learning_rate", "3e-3",
        "--mask_time_prob", "0.0",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--seed", "0",
        "--disable_tqdm", "True",
        "--use_cpu", "True",
        "--preprocessing_num_workers", "1",
        *extra,
    ]  # fmt: skip
    run_finetuning(*parse_finetune_args(argv))
    return json.loads((out / "trainer_state.json").read_text())


def _losses(state: dict) -> list[float]:
    return [row["loss"] for row in state["log_history"] if "loss" in row]


@pytest.mark.slow
def test_lazy_loading_in_workers_trains_exactly_like_eager_with_batches_by_seconds(tmp_path: Path) -> None:
    eager = _finetune(tmp_path / "eager", "--max_batch_seconds", "9")
    lazy = _finetune(
        tmp_path / "lazy", "--max_batch_seconds", "9", "--train_loading", "lazy", "--dataloader_num_workers", "2"
    )
    assert eager["global_step"] == lazy["global_step"] == 4
    assert _losses(lazy) == pytest.approx(_losses(eager), rel=1e-5)  # same items, same batches, same steps
    fixed = _finetune(tmp_path / "fixed", "--per_device_train_batch_size", "2")
    assert _losses(fixed) != pytest.approx(_losses(eager), rel=1e-5)  # the seconds budget did change the batches


def test_a_batch_budget_below_the_longest_clip_fails_before_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shorter than the longest kept clip"):
        _finetune(tmp_path / "ft", "--max_batch_seconds", "0.5", "--train_loading", "lazy")
    assert not (tmp_path / "ft" / "trainer_state.json").exists()
    argv = [
        "--config_name", "tiny", "--config_overrides", '{"feat_extract_norm": "layer"}',
        "--train_source", str(FIXTURES / "pretrain"), "--max_seconds", "1.0",
        "--output_dir", str(tmp_path / "pt"), "--max_steps", "1", "--report_to", "none", "--use_cpu", "True",
        "--max_batch_seconds", "0.5",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="shorter than the longest kept clip"):
        run_pretraining(*parse_pretrain_args(argv))


def test_pretraining_with_batches_by_seconds(tmp_path: Path) -> None:
    argv = [
        "--config_name", "tiny", "--config_overrides", '{"feat_extract_norm": "layer"}',
        "--train_source", str(FIXTURES / "pretrain"), "--max_seconds", "1.0",
        "--output_dir", str(tmp_path / "pt"), "--max_steps", "2", "--logging_steps", "1",
        "--report_to", "none", "--use_cpu", "True", "--disable_tqdm", "True",
        "--max_batch_seconds", "3",
    ]  # fmt: skip
    run_pretraining(*parse_pretrain_args(argv))
    state = json.loads((tmp_path / "pt" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert all(row["loss"] == row["loss"] for row in state["log_history"] if "loss" in row)  # finite, not NaN
