"""The hf-w2v2 command starts fast (no torch at start-up) and checks its input paths before loading a model."""

from __future__ import annotations

import subprocess
import sys
import time

import hf_w2v2

COMMAND = [sys.executable, "-m", "hf_w2v2.cli"]


def run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - start


def test_help_and_version_do_not_load_torch_and_are_quick() -> None:
    code = "import sys, hf_w2v2.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.split() == ["False", "False"]
    done, _ = run("--help")  # warm the file cache once
    done, seconds = run("--help")
    assert done.returncode == 0 and "transcribe" in done.stdout
    assert seconds < 1.5, f"hf-w2v2 --help took {seconds:.2f} s"
    done, seconds = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"hf-w2v2 {hf_w2v2.__version__}"
    assert seconds < 1.5


def test_a_missing_input_is_reported_before_the_model_loads(tmp_path) -> None:
    done, seconds = run("transcribe", str(tmp_path / "missing.wav"), "--model", str(tmp_path / "no-model"))
    assert done.returncode == 2
    assert "missing.wav" in done.stderr and "no-model" not in done.stderr
    code = "import sys; from hf_w2v2.cli import main; main(sys.argv[1:]); print('torch' in sys.modules)"
    probe = subprocess.run(
        [sys.executable, "-c", code, "transcribe", str(tmp_path / "missing.wav"), "--model", "m"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip() == "False"  # the error came before torch was imported
