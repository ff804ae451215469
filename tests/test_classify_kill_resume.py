"""kill -9 during a checkpoint save, then resume: classification ends with exactly the weights of an
uninterrupted run, as fine-tuning and pre-training do (tests/test_kill_resume.py): the shared
Wav2Vec2Trainer gives every job atomic checkpoints and resumable length-grouped batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_w2v2.classify.splits import write_split

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT / "tests" / "fixtures" / "fsdd"

# KILL_AT=N sends SIGKILL to the run in the middle of step N's checkpoint save (weights and optimizer
# written, RNG and trainer state not yet).
RUNNER = """
import os, signal, sys
from transformers import Trainer
from hf_w2v2.classify import parse_classify_args, run_classification

at = int(os.environ.get("KILL_AT", "0"))
original = Trainer._save_rng_state

def save_rng_state(self, output_dir):
    if self.state.global_step == at:
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, output_dir)

Trainer._save_rng_state = save_rng_state
run_classification(*parse_classify_args(sys.argv[1:]))
"""


def _run(train: Path, out: Path, kill_at: int = 0, *extra: str) -> int:
    argv = [
        "--config_name", "tiny",
        "--train_data", str(train),
        "--output_dir", str(out),
        "--do_train",
        "--max_steps", "6",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3",
        "--mask_time_length", "2",
        "--layerdrop", "0.2",
        "--train_sampling_strategy", "group_by_length",
        "--save_steps", "2",
        "--report_to", "none",
        "--seed", "0",
        "--disable_tqdm", "True",
        "--use_cpu", "True",
        "--preprocessing_num_workers", "1",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "KILL_AT": str(kill_at), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUNNER, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


@pytest.mark.slow
def test_sigkill_during_a_save_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    write_split(FSDD / "metadata.csv", "take>=2", train)
    straight = tmp_path / "straight"
    assert _run(train, straight) == 0
    expected = load_file(straight / "model.safetensors")
    out = tmp_path / "killed"
    assert _run(train, out, 4) == -signal.SIGKILL
    assert (out / ".staging-checkpoint-4").is_dir() and not (out / "checkpoint-4").exists()
    assert not (out / "model.safetensors").exists()
    assert _run(train, out, 0, "--resume_from_checkpoint", "latest") == 0
    got = load_file(out / "model.safetensors")
    assert [key for key in expected if not torch.equal(expected[key], got[key])] == []
