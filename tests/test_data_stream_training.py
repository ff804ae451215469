"""Training on streams (issue 24.2): a run killed with SIGKILL and resumed from its last checkpoint sees exactly
the samples of an uninterrupted run, step by step, with DataLoader workers and a shuffle buffer; two gloo
processes whose shards are of very unequal size (one also reading a corrupt shard) both reach max_steps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_ranks, run_together
from safetensors.torch import load_file

from hf_w2v2.data.shards import write_shards
from hf_w2v2.data.sources import read_audiofolder

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "tests" / "fixtures" / "finetune" / "train"

# Fine-tuning (or pre-training, TASK=pretrain) that appends the item names of every training micro-batch,
# with the optimizer step it belongs to, to NAMES_LOG; KILL_AT=N sends SIGKILL to itself after step N.
RUNNER = """
import json, logging, os, signal, sys, zlib
import torch
from transformers import TrainerCallback

logging.basicConfig(level=logging.INFO)

task = os.environ["TASK"]
if task == "finetune":
    from hf_w2v2.data.collator import DataCollatorCTCWithPadding as Collator
    from hf_w2v2.finetune import parse_finetune_args as parse, run_finetuning as run
    from hf_w2v2.finetune.trainer import CTCTrainer as TrainerClass
else:
    from hf_w2v2.pretrain.collator import DataCollatorForPreTraining as Collator
    from hf_w2v2.pretrain.arguments import parse_pretrain_args as parse
    from hf_w2v2.pretrain.run import run_pretraining as run
    from hf_w2v2.pretrain.trainer import PreTrainingTrainer as TrainerClass

kill_at = int(os.environ.get("KILL_AT", "0"))
collate = Collator.__call__

def collate_with_names(self, features):
    batch = collate(self, features)
    batch["name_ids"] = torch.tensor([zlib.crc32(f["name"].encode()) for f in features])  # tensors cross workers
    return batch

step = TrainerClass.training_step

def training_step(self, model, inputs, *args, **kwargs):
    ids = inputs.pop("name_ids").tolist()
    with open(os.environ["NAMES_LOG"], "a") as handle:
        handle.write(json.dumps([self.state.global_step, self.args.process_index, ids]) + "\\n")
    return step(self, model, inputs, *args, **kwargs)

class KillAfterStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

Collator.__call__ = collate_with_names
TrainerClass.training_step = training_step
init = TrainerClass.__init__
def patched_init(self, *a, **k):
    init(self, *a, **k)
    self.add_callback(KillAfterStep())
TrainerClass.__init__ = patched_init
run(*parse(sys.argv[1:]))
"""

COMMON = [
    "--config_name", "tiny",
    "--config_overrides", '{"feat_extract_norm": "layer"}',
    "--output_dir", "OUT",
    "--train_loading", "stream",
    "--max_steps", "8",
    "--per_device_train_batch_size", "2",
    "--learning_rate", "3e-3",
    "--save_steps", "3",
    "--logging_steps", "1",
    "--report_to", "none",
    "--seed", "0",
    "--disable_tqdm", "True",
    "--use_cpu", "True",
    "--remove_unused_columns", "False",  # the name reaches the collator in pre-training too
]  # fmt: skip
TASK_ARGS = {
    "finetune": ["--do_train", "--mask_time_prob", "0.05", "--mask_time_length", "2", "--layerdrop", "0.0"],
    "pretrain": ["--max_seconds", "1.0", "--min_seconds", "0.5"],
}


def _run(task: str, out: Path, data: Path, kill_at: int = 0, *extra: str) -> int:
    return _run_together([(task, out, data, kill_at, extra)])[0]


def _run_together(runs: list[tuple[str, Path, Path, int, tuple[str, ...]]]) -> list[int]:
    """Exit codes of independent runs started at once (conftest.run_together: both cores of a 2-core CI)."""
    jobs = [_job(*run[:4], *run[4]) for run in runs]
    results = run_together([command for command, _ in jobs], [env for _, env in jobs], ROOT, timeout=600)
    for done in results:
        assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return [done.returncode for done in results]


def _job(task: str, out: Path, data: Path, kill_at: int = 0, *extra: str) -> tuple[list[str], dict[str, str]]:
    data_flag = "--train_data" if task == "finetune" else "--train_source"
    argv = [str(out) if a == "OUT" else a for a in COMMON] + TASK_ARGS[task] + [data_flag, str(data), *extra]
    env = {
        **os.environ,
        "TASK": task,
        "KILL_AT": str(kill_at),
        "NAMES_LOG": str(out.parent / f"{out.name}.names.jsonl"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    return [sys.executable, "-c", RUNNER, *argv], env


def _names_by_step(log: Path) -> dict[int, list[int]]:
    """Step -> names of the micro-batch(es) trained at that step (a later line for a step replaces earlier ones)."""
    steps: dict[int, list[int]] = {}
    for line in log.read_text().splitlines():
        step, _, ids = json.loads(line)
        steps[step] = ids
    return steps


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    write_shards(read_audiofolder(TRAIN), folder, 3, show_progress=False)  # 6 shards: 3,3,3,3,3,1 clips
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("task", ["finetune", "pretrain"])
def test_sigkill_then_resume_sees_exactly_the_samples_of_an_uninterrupted_run(
    tmp_path: Path, shards: Path, task: str
) -> None:
    extra = ("--dataloader_num_workers", "2", "--shuffle_buffer", "4")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # independent: run together; the killed one's last checkpoint is checkpoint-3
    assert _run_together([(task, straight, shards, 0, extra), (task, killed, shards, 5, extra)]) == [0, -signal.SIGKILL]
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-3"]
    before = _names_by_step(tmp_path / "killed.names.jsonl")
    assert sorted(before) == [0, 1, 2, 3, 4]
    (tmp_path / "killed.names.jsonl").unlink()
    assert _run(task, killed, shards, 0, *extra, "--resume_from_checkpoint", "latest") == 0
    after = _names_by_step(tmp_path / "killed.names.jsonl")
    expected = _names_by_step(tmp_path / "straight.names.jsonl")
    assert sorted(after) == [3, 4, 5, 6, 7]  # resumed after step 3
    assert {**before, **after} == expected
    assert len({name for ids in expected.values() for name in ids}) >= 8  # the stream moved through the shards
    if task == "finetune":  # the same samples and restored RNG: the same weights
        want, got = load_file(straight / "model.safetensors"), load_file(killed / "model.safetensors")
        assert [key for key in want if not torch.equal(want[key], got[key])] == []


@pytest.mark.slow
def test_two_gloo_ranks_with_unequal_shards_stop_together_at_max_steps(tmp_path: Path) -> None:
    """Rank 0 reads one clip and a corrupt shard, pass after pass; rank 1 reads 15 clips."""
    utterances = read_audiofolder(TRAIN)
    folder = tmp_path / "shards"
    write_shards(utterances[:1], folder / "a", 1, show_progress=False)  # rank 0: 1 clip, read again and again
    write_shards(utterances[1:], folder / "b", 15, show_progress=False)  # rank 1: 15 clips
    (folder / "c").mkdir()
    (folder / "c" / "shard-000000.tar").write_bytes(b"corrupt" * 300)  # rank 0 too (shards are dealt a, b, c)
    out = tmp_path / "ddp"
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", str(script),
    ]  # fmt: skip
    argv = [str(out) if a == "OUT" else a for a in COMMON] + TASK_ARGS["finetune"]
    argv += ["--train_data", str(folder), "--max_steps", "6", "--save_steps", "6", "--shuffle_buffer", "1"]
    argv += ["--ddp_backend", "gloo"]
    env = {
        **os.environ,
        "TASK": "finetune",
        "NAMES_LOG": str(tmp_path / "names.jsonl"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    done = run_ranks(
        lambda: subprocess.run([*command, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600),
        clear=[out, tmp_path / "names.jsonl"],
    )  # a hang (one rank waiting in an all-reduce) fails here with TimeoutExpired
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    by_rank: dict[int, list[int]] = {0: [], 1: []}
    for line in (tmp_path / "names.jsonl").read_text().splitlines():
        _, rank, ids = json.loads(line)
        by_rank[rank].extend(ids)
    assert len(by_rank[0]) == len(by_rank[1]) == 12  # 6 steps x 2 clips on each rank
    assert len(set(by_rank[0])) == 1 and len(set(by_rank[1])) == 12  # rank 0 read its one clip 12 times
    assert not set(by_rank[0]) & set(by_rank[1])  # each rank read only its own shards
    assert f"skipping the rest of shard {folder / 'c' / 'shard-000000.tar'}" in done.stdout + done.stderr
    passes = re.findall(r"stream rank 0 worker 0 \(fine-tuning\) pass (\d+)", done.stdout + done.stderr)
    assert passes and max(map(int, passes)) >= 5  # rank 0's stream ended and started again, many times


@pytest.mark.slow
def test_a_time_budget_stops_a_stream_and_the_run_folder_is_complete(tmp_path: Path, shards: Path) -> None:
    from hf_w2v2.finetune import parse_finetune_args, run_finetuning

    out = tmp_path / "budget"
    argv = [str(out) if a == "OUT" else a for a in COMMON] + TASK_ARGS["finetune"]
    argv += ["--train_data", str(shards), "--max_steps", "100000", "--max_train_minutes", "0.1", "--save_steps", "0"]
    argv += ["--save_strategy", "no", "--eval_data", str(TRAIN.parent / "dev")]
    result = run_finetuning(*parse_finetune_args(argv))
    steps = json.loads((out / "trainer_state.json").read_text())["global_step"]
    assert 0 < steps < 100000 and result.metrics["train_runtime"] < 60
    assert "eval_wer" in result.metrics and (out / "README.md").is_file()
    assert "streamed from 6 shard(s)" in (out / "data_report.txt").read_text()
