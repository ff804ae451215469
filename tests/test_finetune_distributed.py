"""Data parallelism on CPU: ``torchrun --nproc_per_node 2 examples/finetune_ctc.py`` trains one model
with two processes (gloo), not two independent copies - the global batch is twice the per-process one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_ranks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("processes", [2])
def test_torchrun_two_cpu_processes_share_the_batches(tmp_path: Path, processes: int) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--standalone",  # a free port, not a fixed one another job may hold
        str(ROOT / "examples/finetune_ctc.py"),
        str(ROOT / "examples/configs/finetune_tiny_fixture.yaml"),
        "--train_data",
        str(ROOT / "tests/fixtures/finetune/train"),
        "--eval_data",
        str(ROOT / "tests/fixtures/finetune/dev"),
        "--output_dir",
        str(out),
        "--max_steps",
        "4",
        "--eval_steps",
        "4",
        "--save_steps",
        "4",
        "--disable_tqdm",
        "True",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = run_ranks(
        lambda: subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600), clear=[out]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    # 16 fixture clips, 4 per process: 2 processes -> 8 per optimizer step -> 2 steps per epoch
    utterances = len((ROOT / "tests/fixtures/finetune/train/metadata.csv").read_text().splitlines()) - 1
    assert state["global_step"] == 4
    assert state["epoch"] == pytest.approx(4 * 4 * processes / utterances)
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
