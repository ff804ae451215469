"""kill -9 and resume (issue 23.4): a fine-tuning run killed with SIGKILL at a step, or in the middle of a
checkpoint save, resumes from ``latest`` and ends with exactly the weights of an uninterrupted run; so does
one stopped with Ctrl-C (SIGINT), which saves a checkpoint at the next step and says how to resume."""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_together
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "finetune"

# Runs fine-tuning as the example script does; KILL_AT="step:N" sends SIGKILL to itself after optimizer step
# N, "save:N" in the middle of step N's checkpoint save (weights and optimizer written, RNG and trainer state
# not yet), "int:N" SIGINT (Ctrl-C) after step N.
RUNNER = """
import os, signal, sys
from transformers import Trainer, TrainerCallback
from hf_w2v2.exits import exit_on_interrupt
from hf_w2v2.finetune import parse_finetune_args, run_finetuning
from hf_w2v2.finetune.trainer import CTCTrainer

kind, _, at = os.environ.get("KILL_AT", "none:0").partition(":")
at = int(at)
original = Trainer._save_rng_state

def save_rng_state(self, output_dir):
    if kind == "save" and self.state.global_step == at:
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, output_dir)

class KillAfterStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if kind in ("step", "int") and state.global_step == at:
            os.kill(os.getpid(), signal.SIGKILL if kind == "step" else signal.SIGINT)

Trainer._save_rng_state = save_rng_state
init = CTCTrainer.__init__
def patched_init(self, *a, **k):
    init(self, *a, **k)
    self.add_callback(KillAfterStep())
CTCTrainer.__init__ = patched_init
with exit_on_interrupt():
    run_finetuning(*parse_finetune_args(sys.argv[1:]))
"""


def _command(out: Path, *extra: str) -> list[str]:
    argv = [
        "--config_name", "tiny",
        "--config_overrides", '{"feat_extract_norm": "layer"}',
        "--train_data", str(FIXTURE / "train"),
        "--output_dir", str(out),
        "--do_train",
        "--max_steps", "8",
        "--per_device_train_batch_size", "4",  # 16 clips: 4 steps per epoch
        "--learning_rate", "3e-3",
        "--mask_time_prob", "0.05",
        "--mask_time_length", "2",
        "--layerdrop", "0.2",
        "--train_sampling_strategy", "group_by_length",
        "--save_steps", "2",
        "--logging_steps", "1",
        "--report_to", "none",
        "--seed", "0",
        "--disable_tqdm", "True",
        "--use_cpu", "True",
        "--preprocessing_num_workers", "1",
        *extra,
    ]  # fmt: skip
    return [sys.executable, "-c", RUNNER, *argv]


def _run(runs: list[tuple[Path, str, tuple[str, ...]]]) -> list[int]:
    """Exit codes of the (output folder, KILL_AT, extra options) runs, all started at once (conftest)."""
    envs = [
        {**os.environ, "KILL_AT": kill_at, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)} for _, kill_at, _ in runs
    ]
    done = run_together([_command(out, *extra) for out, _, extra in runs], envs, ROOT)
    for result, (out, kill_at, _) in zip(done, runs):
        assert result.returncode in (0, -signal.SIGKILL, 130), result.stderr[-3000:]
        if kill_at.startswith("int"):  # the line the user reads, and no traceback
            step = int(kill_at.split(":")[1]) + 1  # the handler runs after the callback that checks it
            assert "Traceback" not in result.stderr, result.stderr[-3000:]
            assert result.stderr.splitlines()[-1] == (
                f"SIGINT: training stopped at step {step} of 8 and saved {out / f'checkpoint-{step}'}; "
                "resume with --resume_from_checkpoint latest (the same --output_dir)"
            ), result.stderr[-3000:]
    return [result.returncode for result in done]


@pytest.mark.slow
def test_sigkill_at_a_step_or_during_a_save_then_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    rng = random.Random(23)
    # Ctrl-C after an even step: the run stops after the next, odd one, which only the interrupt saves
    kills = [f"step:{rng.choice([3, 5, 7])}", f"save:{rng.choice([4, 6])}", f"int:{rng.choice([2, 4])}"]
    outs = [tmp_path / kill_at.replace(":", "-") for kill_at in kills]
    # the uninterrupted run and the killed ones are independent: run together, then the resumes
    codes = _run([(straight, "none:0", ()), *((out, kill_at, ()) for out, kill_at in zip(outs, kills))])
    assert codes == [0, -signal.SIGKILL, -signal.SIGKILL, 130], (kills, codes)
    expected = load_file(straight / "model.safetensors")
    for kill_at, out in zip(kills, outs):
        assert not (out / "model.safetensors").exists()
        if kill_at.startswith("save"):
            step = int(kill_at.split(":")[1])
            assert (out / f".staging-checkpoint-{step}").is_dir() and not (out / f"checkpoint-{step}").exists()
    assert _run([(out, "none:0", ("--resume_from_checkpoint", "latest")) for out in outs]) == [0, 0, 0]
    for kill_at, out in zip(kills, outs):
        got = load_file(out / "model.safetensors")
        different = [key for key in expected if not torch.equal(expected[key], got[key])]
        assert different == [], (kill_at, different)
