"""bench/gpu_check.sh (issue 37.5) cannot run without a GPU: here it must parse and refuse clearly, and its
checks' code must run on the CPU (a dry run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_parses_and_says_there_is_no_gpu() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_check.sh")]).returncode == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "no CUDA GPU visible to torch" in done.stderr, done.stderr


@pytest.mark.slow
def test_gpu_check_code_runs_on_the_cpu() -> None:
    """``--cpu_dry_run``: every check's code on the CPU with 1 s clips (about 10 CPU-seconds), so that the
    script does not rot where no GPU runs it; the DDP row skips (no GPU)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--cpu_dry_run"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("hf_w2v2 GPU check") :]
    for check in ("parity fp32 base", "parity bf16 large-lv60", "fine-tuning step", "pre-training step", "inference"):
        assert f"{check}" in table and "FAIL" not in table, table
    assert "DDP on all GPUs" in table and "skip" in table, table
