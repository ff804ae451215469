"""Exact resume of CTC fine-tuning with length-grouped batches (issue 23.3): kill mid-epoch, resume,
and every logged loss and the final weights equal those of the uninterrupted run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("datasets")
pytest.importorskip("jiwer")

from hf_w2v2.finetune import parse_finetune_args, run_finetuning

FIXTURE = Path(__file__).parent / "fixtures" / "finetune"


def _args(out: Path, *extra: str):
    argv = [
        "--config_name", "tiny",
        "--config_overrides", '{"feat_extract_norm": "layer"}',
        "--train_data", str(FIXTURE / "train"),
        "--output_dir", str(out),
        "--do_train",
        "--max_steps", "10",
        "--per_device_train_batch_size", "4",  # 16 clips: 4 steps per epoch; step 6 is mid-epoch 1
        "--learning_rate", "3e-3",
        "--mask_time_prob", "0.05",
        "--mask_time_length", "2",
        "--train_sampling_strategy", "group_by_length",
        "--save_steps", "3",
        "--logging_steps", "1",
        "--report_to", "none",
        "--seed", "0",
        "--disable_tqdm", "True",
        "--use_cpu", "True",
        "--preprocessing_num_workers", "1",
        *extra,
    ]  # fmt: skip
    return parse_finetune_args(argv)


def _losses(folder: Path) -> dict[int, float]:
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return {row["step"]: row["loss"] for row in history if "loss" in row}


@pytest.mark.slow
def test_group_by_length_resume_mid_epoch_is_bit_exact(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    run_finetuning(*_args(straight))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-6", resumed / "checkpoint-6")  # as if killed after step 6's save
    run_finetuning(*_args(resumed, "--resume_from_checkpoint", "latest"))
    expected, got = _losses(straight), _losses(resumed)
    assert sorted(expected) == list(range(1, 11))
    assert {step: got[step] for step in range(7, 11)} == {step: expected[step] for step in range(7, 11)}
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[key], b[key]) for key in a), [k for k in a if not torch.equal(a[k], b[k])]
