"""Every distributed strategy trains what one process trains (issue 37): DDP (launched as two one-process
"nodes" on this box), FSDP2, DeepSpeed ZeRO-2 and ZeRO-3, each fine-tuning and pre-training the tiny model
from a pre-trained folder on 2 CPU processes (gloo) for 3 steps.

- **Fine-tuning** is deterministic (no dropout, LayerDrop or SpecAugment; CTC ``mean`` reduction): the loss
  of every step equals the single-process run with the same global batch (2 x 4 = 8) within
  ``RTOL_SAME = 1e-5`` (float32 reductions in another order).
- **Pre-training** draws its masks, negatives and Gumbel noise from each process's generator, so 2 processes
  cannot draw what one process draws: DDP's losses match the single-process run (2 x 3 = 6 clips) within
  ``RTOL_DRAWS = 0.1`` (measured: 1.4% at the first step, 5.4% at most), and every sharded strategy
  matches DDP's within ``RTOL_SAME`` (same draws, same batches: what it computes is what DDP computes).
- **Memory**: each rank logs its parameter + optimizer bytes after the first step (fp32, Adam). DDP holds
  4 + 8 bytes per trainable parameter; FSDP half of it (< 0.6 x DDP's); ZeRO-3 (4 + 4 + 8) / 2 (its fp32
  master partition is a second copy of the parameter partition in fp32 training: < 0.7 x); ZeRO-2 keeps whole
  parameters and half the optimizer plus its master partition (< 0.9 x).
- **Mixed configs**: FSDP and ZeRO-3 run with ``--gradient_checkpointing`` (same numbers, recomputed).
- **Weights**: every rank ends with the same parameters (checksums), the saved folder is them, stock
  transformers loads it and computes what hf_w2v2 computes; FSDP's sharded checkpoint and ZeRO-3's
  partitions consolidate (one process) into a folder with the same outputs.

One launch per strategy runs both jobs (tests/strategy_worker.py): starting a process group is most of a
tiny run's time. The module costs about 90 CPU-seconds (user + sys of all its processes): 146-250 s of
wall time on the project's 2 cores at load average 10-15, about 60-90 s on 2 idle cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import pick_free_port, run_ranks
from strategy_worker import make_start

from hf_w2v2.training.distributed import CHECKSUM_MARK, MEMORY_MARK, START_MARK, parameter_checksum

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "accelerate"
FIXTURES = ROOT / "tests" / "fixtures"
WORKER = ROOT / "tests" / "strategy_worker.py"
STEPS = 3
FINETUNE_BATCH, PRETRAIN_BATCH = 4, 3  # per process; the single-process reference takes twice that
RTOL_SAME = 1e-5
RTOL_DRAWS = 0.1

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pre-trained starts of the two jobs (:func:`strategy_worker.make_start`)."""
    return make_start(tmp_path_factory.mktemp("start"))


def job_args(start: Path, out: Path, scale: int, checkpoint: bool, extra: tuple[str, ...] = ()) -> list[str]:
    """Worker arguments: fine-tuning ``:::`` pre-training, per-process batches x ``scale``, ``extra`` for both."""
    common = ["--max_steps", str(STEPS), "--logging_steps", "1", "--learning_rate", "1e-3", "--seed", "0"]
    common += ["--report_to", "none", "--disable_tqdm", "True", *extra]
    save = ["--save_strategy", "steps", "--save_steps", str(STEPS)] if checkpoint else ["--save_strategy", "no"]
    finetune = [
        "--model_name_or_path", str(start / "ctc"), "--train_data", str(FIXTURES / "finetune/train"), "--do_train",
        "--per_device_train_batch_size", str(FINETUNE_BATCH * scale), "--eval_strategy", "no",
        *save, *common, "--output_dir", str(out / "ft"),
    ]  # fmt: skip
    pretrain = [
        "--model_name_or_path", str(start / "pre"), "--train_source", str(FIXTURES / "pretrain"),
        "--max_seconds", "1.0", "--per_device_train_batch_size", str(PRETRAIN_BATCH * scale),
        "--save_strategy", "no", *common, "--output_dir", str(out / "pt"),
    ]  # fmt: skip
    return [*finetune, ":::", *pretrain]


def run_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}


def launch(config: str, args: list[str], out: Path, nodes: int = 1) -> str:
    """``accelerate launch --config_file CONFIG.yaml`` of the worker on 2 processes (``nodes`` launchers of
    2 / nodes processes each, all on 127.0.0.1); the log of every launcher (also written to ``out/launch.log``)."""
    port = pick_free_port()
    base = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{config}.yaml")]
    base += ["--num_processes", "2", "--main_process_port", str(port)]
    base += [] if config.startswith("deepspeed") else ["--mixed_precision", "no"]  # fp32 (DeepSpeed: no --bf16)
    if nodes > 1:
        base += ["--num_machines", str(nodes), "--main_process_ip", "127.0.0.1"]
    commands = [
        [*base, *(["--machine_rank", str(rank)] if nodes > 1 else []), str(WORKER), *args] for rank in range(nodes)
    ]

    def launch_all() -> subprocess.CompletedProcess[str]:
        runs = [
            subprocess.Popen(c, cwd=ROOT, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for c in commands
        ]
        logs = [run.communicate(timeout=600)[0] for run in runs]
        code = next((run.returncode for run in runs if run.returncode != 0), 0)
        return subprocess.CompletedProcess(commands, code, "\n".join(logs), "")

    done = run_ranks(launch_all, clear=[out])
    out.mkdir(parents=True, exist_ok=True)
    (out / "launch.log").write_text(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:]
    return done.stdout


def losses(out: Path) -> list[float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def memory(log: str) -> dict[int, tuple[int, int]]:
    """Bytes per rank, fine-tuning then pre-training: ``{rank: (fine-tuning, pre-training)}``."""
    found: dict[int, list[int]] = {}
    for rank, total in re.findall(rf"{MEMORY_MARK} rank (\d+): .*\((\d+) bytes\)", log):
        found.setdefault(int(rank), []).append(int(total))
    assert all(len(v) == 2 for v in found.values()), found
    return {rank: (v[0], v[1]) for rank, v in found.items()}


@pytest.fixture(scope="module")
def single(start: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process run with the global batch of the 2-process runs."""
    out = tmp_path_factory.mktemp("single")
    command = [sys.executable, str(WORKER), *job_args(start, out, scale=2, checkpoint=False)]
    done = subprocess.run(command, cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    (out / "log.txt").write_text(done.stdout + done.stderr)
    return out


@pytest.fixture(scope="module")
def ddp(start: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """DDP launched as two one-process nodes (``--num_machines 2 --machine_rank 0/1``), docs/scale_out.md."""
    out = tmp_path_factory.mktemp("ddp")
    return out, launch("ddp", job_args(start, out, scale=1, checkpoint=False), out, nodes=2)


def check_weights(log: str, out: Path) -> None:
    """Both ranks ended with the same parameters, the saved folders hold them, and stock transformers loads
    them and computes what hf_w2v2 computes."""
    import transformers

    import hf_w2v2

    checksums: dict[str, list[float]] = {}  # rank -> [fine-tuning, pre-training], the order each rank ran them
    for rank, value in re.findall(rf"{CHECKSUM_MARK} rank (\d+): (\S+)", log):
        checksums.setdefault(rank, []).append(float(value))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"] and len(checksums["0"]) == 2, checksums
    for index, (job, (ours, stock)) in enumerate(
        {
            "ft": (hf_w2v2.Wav2Vec2ForCTC, transformers.Wav2Vec2ForCTC),
            "pt": (hf_w2v2.Wav2Vec2ForPreTraining, transformers.Wav2Vec2ForPreTraining),
        }.items()
    ):
        model = ours.from_pretrained(out / job).eval()
        assert parameter_checksum(model) == pytest.approx(checksums["0"][index], rel=1e-12)
        reference, info = stock.from_pretrained(out / job, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        audio = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            got = model.wav2vec2(audio).last_hidden_state
            want = reference.eval().wav2vec2(audio).last_hidden_state
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_ddp_two_nodes_equals_one_process(ddp: tuple[Path, str], single: Path) -> None:
    out, log = ddp
    setups = re.findall(rf"{START_MARK} (.*)", log)
    assert len(setups) == 4 and all(s.startswith("MULTI_CPU, 2 processes") for s in setups), setups
    assert losses(out / "ft") == pytest.approx(losses(single / "ft"), rel=RTOL_SAME)
    assert losses(out / "pt") == pytest.approx(losses(single / "pt"), rel=RTOL_DRAWS)
    assert len(losses(out / "ft")) == len(losses(out / "pt")) == STEPS
    check_weights(log, out)


GRADIENT_CHECKPOINTING = ("--gradient_checkpointing", "True")  # recomputes the same numbers: losses unchanged
SHARDED = [  # config, what the run reports, memory bound vs DDP, extra options (a mixed config each)
    pytest.param("fsdp", "FSDP (FSDP2)", 0.6, GRADIENT_CHECKPOINTING, id="fsdp"),
    pytest.param("deepspeed_zero2", "DEEPSPEED (ZeRO-2)", 0.9, (), id="zero2"),
    pytest.param("deepspeed_zero3", "DEEPSPEED (ZeRO-3)", 0.7, GRADIENT_CHECKPOINTING, id="zero3"),  # + fp32 master
]


@pytest.mark.parametrize(("config", "kind", "memory_ratio", "extra"), SHARDED)
def test_sharded_strategy_equals_ddp_and_one_process(
    config: str,
    kind: str,
    memory_ratio: float,
    extra: tuple[str, ...],
    start: Path,
    single: Path,
    ddp: tuple[Path, str],
    tmp_path: Path,
) -> None:
    from hf_w2v2 import Wav2Vec2ForCTC
    from hf_w2v2.cli import main

    if config.startswith("deepspeed"):
        pytest.importorskip("deepspeed", reason="DeepSpeed strategies need `pip install deepspeed`")
    ddp_out, ddp_log = ddp
    out = tmp_path / "out"
    log = launch(config, job_args(start, out, scale=1, checkpoint=True, extra=extra), out)
    setups = re.findall(rf"{START_MARK} (.*)", log)
    assert len(setups) == 4 and all(s.startswith(f"{kind}, 2 processes") for s in setups), setups
    assert losses(out / "ft") == pytest.approx(losses(single / "ft"), rel=RTOL_SAME)
    assert losses(out / "pt") == pytest.approx(losses(ddp_out / "pt"), rel=RTOL_SAME)
    sharded, replicated = memory(log), memory(ddp_log)
    for rank in (0, 1):
        for job in (0, 1):
            assert sharded[rank][job] < memory_ratio * replicated[rank][job], (sharded, replicated)
    check_weights(log, out)
    whole = tmp_path / "consolidated"  # from the shards alone: FSDP's pytorch_model_fsdp_0/, ZeRO's global_step3/
    assert main(["consolidate", str(out / "ft" / f"checkpoint-{STEPS}"), str(whole)]) == 0
    audio = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = Wav2Vec2ForCTC.from_pretrained(whole).eval()(audio).logits
        want = Wav2Vec2ForCTC.from_pretrained(out / "ft").eval()(audio).logits
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
