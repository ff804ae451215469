"""The accelerate configs of examples/accelerate (issues 24.4, 37): each parses with accelerate's own loader
and gives the processes the set-up it names; a strategy the machine cannot run is refused before any data
work; a DDP run with a time budget keeps one clock across processes. The real 2-process runs of every
strategy (DDP, FSDP2, ZeRO-2, ZeRO-3; fine-tuning and pre-training; equal losses) are in
tests/test_strategies.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import pick_free_port, run_ranks

from hf_w2v2.models import transformer
from hf_w2v2.training import precision
from hf_w2v2.training.distributed import CHECKSUM_MARK, RankMemory, parameter_checksum, rank_memory
from hf_w2v2.training.precision import use_cpu_without_accelerator

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "accelerate"
FIXTURES = ROOT / "tests" / "fixtures"
EXPECTED = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED"}


def launch_env(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment ``accelerate launch --config_file NAME.yaml`` gives its processes (accelerate's own code)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    monkeypatch.chdir(ROOT)  # the DeepSpeed JSON path in the YAML is relative to the repository root
    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / f"{name}.yaml"), "train.py"])
    args, defaults, precision_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # the fields accelerate's launch_command hands to DeepSpeedPlugin's checks
        fields = [*defaults.deepspeed_config.keys(), *(["mixed_precision"] if precision_from_config else [])]
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        return prepare_deepspeed_cmd_env(args)[1]
    return prepare_multi_gpu_env(args)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_parses_for_one_node_of_eight_gpus(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.value == EXPECTED[name]
    assert (config.num_processes, config.num_machines) == (8, 1)
    # DeepSpeed: precision is the script's --bf16 (the JSON's "auto"); accelerate refuses both at once
    assert config.mixed_precision == (None if name.startswith("deepspeed") else "bf16")


def test_fsdp_config_wraps_our_transformer_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin

    from hf_w2v2 import Wav2Vec2ForCTC
    from hf_w2v2.models.configuration import config_from_name

    env = launch_env("fsdp", monkeypatch)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True  # full shard
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"  # checkpoints: each rank its shard
    names = plugin.transformer_cls_names_to_wrap
    assert names == ["TransformerBlock"] and all(hasattr(transformer, n) for n in names)
    model = Wav2Vec2ForCTC(config_from_name("tiny", vocab_size=8))
    wrapped = [m for m in model.modules() if type(m).__name__ in names]
    assert len(wrapped) == model.config.num_hidden_layers  # one FSDP unit per encoder block


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config_builds_a_plugin_the_trainer_fills(stage: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import DeepSpeedPlugin

    env = launch_env(f"deepspeed_zero{stage}", monkeypatch)
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    for key, value in env.items():
        if key.startswith("ACCELERATE_"):
            monkeypatch.setenv(key, value)
    plugin = DeepSpeedPlugin()  # from the environment, as TrainingArguments builds it (runs accelerate's checks)
    assert plugin.zero_stage == stage
    config_file = env["ACCELERATE_DEEPSPEED_CONFIG_FILE"]
    raw = json.loads(Path(config_file).read_text())
    assert raw["train_micro_batch_size_per_gpu"] == raw["gradient_accumulation_steps"] == "auto"  # from the Trainer


def test_cpu_deepspeed_launch_keeps_deepspeed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--use_cpu True`` (added on CPU-only machines) would switch DeepSpeed off; a DeepSpeed launch gets gloo."""
    monkeypatch.setattr(precision, "has_accelerator", lambda: False)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert use_cpu_without_accelerator(["--bf16"]) == ["--bf16", "--use_cpu", "False", "--ddp_backend", "gloo"]
    assert use_cpu_without_accelerator(["--ddp_backend", "ccl"]) == ["--ddp_backend", "ccl", "--use_cpu", "False"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    assert use_cpu_without_accelerator([]) == ["--use_cpu", "True"]


def test_parameter_checksum_sees_every_weight() -> None:
    import torch

    from hf_w2v2 import Wav2Vec2ForCTC
    from hf_w2v2.models.configuration import config_from_name

    model = Wav2Vec2ForCTC(config_from_name("tiny", vocab_size=8))
    expected = sum(p.detach().double().sum().item() for p in model.parameters())
    assert parameter_checksum(model) == pytest.approx(expected, rel=1e-12)
    before = parameter_checksum(model)
    with torch.no_grad():
        model.lm_head.bias[0] += 1e-3  # the last parameter of all
    assert parameter_checksum(model) != before


def test_strategy_the_machine_cannot_run_is_refused_before_any_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """DeepSpeed not installed, FSDP1 on CPU processes: refused while parsing the arguments, saying what to do."""
    import importlib.util

    from hf_w2v2.finetune import parse_finetune_args
    from hf_w2v2.training import distributed

    argv = ["--config_name", "tiny", "--train_data", "/nowhere", "--output_dir", "/nowhere/out"]
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "deepspeed" else real_find_spec(name))
    with pytest.raises(RuntimeError, match=r"DeepSpeed, which is not installed: pip install deepspeed"):
        parse_finetune_args(argv)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    monkeypatch.setattr(distributed, "has_accelerator", lambda: False)
    with pytest.raises(RuntimeError, match=r"FSDP version 1 on CPU processes.*fsdp_version: 2"):
        parse_finetune_args(argv)
    monkeypatch.setenv("FSDP_VERSION", "2")
    distributed.check_launch()  # FSDP2 runs on CPU processes


def test_rank_memory_counts_parameters_and_adam_state() -> None:
    import torch

    model = torch.nn.Linear(10, 10)  # 110 float32 parameters: 440 bytes
    optimizer = torch.optim.AdamW(model.parameters())
    assert rank_memory(model, optimizer) == RankMemory(440, 0)
    model(torch.ones(1, 10)).sum().backward()
    optimizer.step()
    assert rank_memory(model, optimizer) == RankMemory(440, 880)  # two moments; the step counters are 0-dim


def test_consolidate_names_what_a_checkpoint_folder_lacks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hf_w2v2.cli import main

    (tmp_path / "checkpoint-5").mkdir()
    assert main(["consolidate", str(tmp_path / "checkpoint-5"), str(tmp_path / "out")]) == 2
    assert "no config.json here or in" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")
    assert main(["consolidate", str(tmp_path / "checkpoint-5"), str(tmp_path / "out")]) == 2
    assert "neither FSDP shards (pytorch_model_fsdp_0/)" in capsys.readouterr().err


# --- real 2-process CPU runs -------------------------------------------------------------------------------

FINETUNE = [
    "examples/finetune_ctc.py", "--config_name", "tiny", "--config_overrides", '{"feat_extract_norm": "layer"}',
    "--train_data", str(FIXTURES / "finetune/train"), "--do_train", "--per_device_train_batch_size", "4",
    "--learning_rate", "1e-3", "--eval_strategy", "no", "--save_strategy", "no",
]  # fmt: skip


def launch(name: str, script_args: list[str], out: Path, port: int, timeout: float = 900) -> str:
    """``accelerate launch --config_file NAME.yaml --num_processes 2`` on this CPU; the log of both processes."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{name}.yaml"),
        "--num_processes", "2", "--main_process_port", str(port), "--mixed_precision", "no",
        *script_args, "--output_dir", str(out), "--logging_steps", "1",
        "--report_to", "none", "--disable_tqdm", "True", "--seed", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = run_ranks(
        lambda: subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout),
        clear=[out],
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    return log


@pytest.mark.slow
def test_time_budget_is_one_clock_across_processes(tmp_path: Path) -> None:
    """With ``--max_train_minutes`` the learning rate and the stop follow the time spent: read from each
    process's own clock, the replicas got different learning rates (different weights) and could stop a step
    apart (a hang). Rank 0's clock is broadcast at every step boundary. The run also reads its clips lazily
    in a worker and batches them by seconds (the same batches on both ranks, each rank its share)."""
    from hf_w2v2 import Wav2Vec2ForCTC

    loading = ["--train_loading", "lazy", "--max_batch_seconds", "9", "--dataloader_num_workers", "1"]

    def run(minutes: float, out: Path) -> tuple[str, int, Path]:
        budget = ["--max_train_minutes", str(minutes), "--max_steps", "100000", "--warmup_steps", "0.1"]
        try:
            log = launch("ddp", [*FINETUNE, *budget, *loading], out, port=pick_free_port(), timeout=120)
        except subprocess.TimeoutExpired:
            # Seen in 2 of ~10 runs: rank 0's first DataLoader worker stuck in fork (not the budget: the other
            # rank waits at the step's broadcast; py-spy). Said loudly and run once more; a second hang fails.
            warnings.warn(
                "2-process run hung at its first batch (a DataLoader worker stuck in fork); again", stacklevel=2
            )
            out = out.with_name(out.name + "_again")
            log = launch("ddp", [*FINETUNE, *budget, *loading], out, port=pick_free_port(), timeout=300)
        return log, json.loads((out / "trainer_state.json").read_text())["global_step"], out

    # Idle 2-core Zen 5: 12 s hold about 8 steps (the first, with the worker's start, ~2.6 s). Step 1's learning
    # rate is 0 (warm-up from no time spent), so one step proves nothing; CI once took a single step in 6 s
    # beside the other test worker. A machine too busy for 2 steps gets one more try with 4x the time.
    log, steps, out = run(0.2, tmp_path / "out")
    if steps < 2:
        warnings.warn(f"{steps} step in 12 s (a busy machine); again with 48 s", stacklevel=1)
        log, steps, out = run(0.8, tmp_path / "out_longer")
    checksums = dict(re.findall(rf"{CHECKSUM_MARK} rank (\d): (\S+)", log))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"], checksums
    assert 2 <= steps < 100000  # stopped by the budget, after steps with a learning rate from the agreed clock
    assert parameter_checksum(Wav2Vec2ForCTC.from_pretrained(out)) == float(checksums["0"])
