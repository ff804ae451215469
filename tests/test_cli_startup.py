"""The hf-w2v2 command starts fast (no torch at start-up) and checks its input paths before loading a model.

Start-up is measured by what it imports (``python -X importtime``), not by the clock: a wall-clock budget
fails on a busy machine (2.4 s at load 6 against 0.13 s idle) and passes a slow import on a fast one.
"""

from __future__ import annotations

import subprocess
import sys

import hf_w2v2

COMMAND = [sys.executable, "-m", "hf_w2v2.cli"]
# Each of these takes 0.2-2 s to import; none is needed to print the help or the version.
HEAVY = ("torch", "transformers", "numpy", "datasets", "soundfile", "scipy", "accelerate", "huggingface_hub")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=120)


def imported_by(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``hf-w2v2 ARGS`` under ``-X importtime``; the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hf_w2v2.cli", *args], capture_output=True, text=True, timeout=120
    )
    # importtime lines: "import time: self [us] | cumulative | imported package"
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}
    return done, names


def test_help_and_version_do_not_load_torch_or_other_heavy_packages() -> None:
    code = "import sys, hf_w2v2.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.split() == ["False", "False"]
    done, names = imported_by("--help")
    assert done.returncode == 0 and "transcribe" in done.stdout
    assert "argparse" in names  # the probe sees the imports
    assert names.isdisjoint(HEAVY), f"hf-w2v2 --help imports {sorted(names & set(HEAVY))}"
    done, names = imported_by("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"hf-w2v2 {hf_w2v2.__version__}"
    assert names.isdisjoint(HEAVY), f"hf-w2v2 --version imports {sorted(names & set(HEAVY))}"


def test_a_missing_input_is_reported_before_the_model_loads(tmp_path) -> None:
    done = run("transcribe", str(tmp_path / "missing.wav"), "--model", str(tmp_path / "no-model"))
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
