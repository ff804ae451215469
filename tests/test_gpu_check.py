"""bench/gpu_check.sh (issue 37.5) cannot run without a GPU; here it must parse, import, and refuse clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_parses_and_says_there_is_no_gpu() -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "bench" / "gpu_check.sh")]).returncode == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "no CUDA GPU visible to torch" in done.stderr, done.stderr
    # the Python half imports everything it uses (oracle, the pre-training bench) and refuses the same way
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "torch sees no CUDA GPU" in done.stdout, done.stdout + done.stderr
