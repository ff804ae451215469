"""The accelerate configs of examples/accelerate (issue 24.4): each parses with accelerate's own loader
and gives the processes the set-up it names; DDP and DeepSpeed ZeRO-2/3 really train the tiny model
on 2 CPU processes (fine-tuning and pre-training) through ``accelerate launch``, and the saved model
is the one every rank held. FSDP cannot shard on CPU processes with accelerate 1.x (it turns FSDP on
only for GPU-like devices): its CPU run is plain data parallelism, and the run says so."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hf_w2v2.models import transformer
from hf_w2v2.training import precision
from hf_w2v2.training.distributed import CHECKSUM_MARK, START_MARK, parameter_checksum
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
    assert plugin.state_dict_type.name == "FULL_STATE_DICT"
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


# --- real 2-process CPU runs -------------------------------------------------------------------------------

FINETUNE = [
    "examples/finetune_ctc.py", "--config_name", "tiny", "--config_overrides", '{"feat_extract_norm": "layer"}',
    "--train_data", str(FIXTURES / "finetune/train"), "--do_train", "--per_device_train_batch_size", "4",
    "--learning_rate", "1e-3", "--eval_strategy", "no", "--save_strategy", "no",
]  # fmt: skip
PRETRAIN = [
    "examples/pretrain.py", "--config_name", "tiny",
    "--config_overrides", '{"feat_extract_norm": "layer", "mask_time_prob": 0.65, "mask_time_length": 5}',
    "--train_source", str(FIXTURES / "pretrain"), "--max_seconds", "1.0", "--per_device_train_batch_size", "3",
    "--save_strategy", "no",
]  # fmt: skip
STEPS = 3


def launch(name: str, script_args: list[str], out: Path, port: int, max_steps: int | None = STEPS) -> str:
    """``accelerate launch --config_file NAME.yaml --num_processes 2`` on this CPU; the log of both processes."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{name}.yaml"),
        "--num_processes", "2", "--main_process_port", str(port),
        *([] if name.startswith("deepspeed") else ["--mixed_precision", "no"]),  # fp32 (DeepSpeed: no --bf16)
        *script_args, "--output_dir", str(out), "--logging_steps", "1",
        "--report_to", "none", "--disable_tqdm", "True", "--seed", "0",
    ]  # fmt: skip
    command += [] if max_steps is None else ["--max_steps", str(max_steps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    return log


def check_run(log: str, out: Path, kind: str, model_class: type, examples_per_epoch: int, batch: int) -> None:
    """Both ranks ran ``kind`` with 2 processes, the losses are finite, the epoch counts 2 x the per-process
    batch per step, every rank ended with the same weights and the saved model holds exactly them."""
    setups = re.findall(rf"{START_MARK} (.*)", log)
    assert len(setups) == 2 and all(s.startswith(kind) and "2 processes" in s for s in setups), setups
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    assert state["global_step"] == STEPS and len(losses) == STEPS and all(math.isfinite(x) for x in losses)
    steps_per_epoch = math.ceil(examples_per_epoch / (2 * batch))  # world size 2: twice the per-process batch
    assert state["epoch"] == pytest.approx(STEPS / steps_per_epoch)
    checksums = dict(re.findall(rf"{CHECKSUM_MARK} rank (\d): (\S+)", log))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"], checksums
    saved = model_class.from_pretrained(out)
    assert parameter_checksum(saved) == float(checksums["0"])


def finetune_examples() -> int:
    return len((FIXTURES / "finetune/train/metadata.csv").read_text().splitlines()) - 1


def pretrain_examples() -> int:
    from hf_w2v2.pretrain.arguments import DataArguments
    from hf_w2v2.pretrain.run import load_audio_set

    data = DataArguments(train_source=str(FIXTURES / "pretrain"), max_seconds=1.0)
    return len(load_audio_set([str(FIXTURES / "pretrain")], data, seed=0))


RUNNABLE = [
    pytest.param("ddp", "MULTI_CPU", id="ddp"),
    pytest.param("deepspeed_zero2", "DEEPSPEED (ZeRO-2)", id="zero2"),
    pytest.param("deepspeed_zero3", "DEEPSPEED (ZeRO-3)", id="zero3"),
]


def needs_backend(name: str) -> None:
    if name.startswith("deepspeed"):
        pytest.importorskip("deepspeed", reason="DeepSpeed is an extra: pip install -e '.[deepspeed]'")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), RUNNABLE)
def test_two_cpu_processes_fine_tune(name: str, kind: str, tmp_path: Path, free_port: int) -> None:
    from hf_w2v2 import Wav2Vec2ForCTC

    needs_backend(name)
    log = launch(name, FINETUNE, tmp_path / "out", port=free_port)
    check_run(log, tmp_path / "out", kind, Wav2Vec2ForCTC, finetune_examples(), batch=4)


@pytest.mark.slow
# ZeRO-3 only, the most involved: pre-training under DDP and ZeRO-2 goes through the launcher and trainer
# code that fine-tuning tests above; they are left out to keep the suite under its time.
@pytest.mark.parametrize(("name", "kind"), RUNNABLE[2:])
def test_two_cpu_processes_pre_train(name: str, kind: str, tmp_path: Path, free_port: int) -> None:
    from hf_w2v2 import Wav2Vec2ForPreTraining

    needs_backend(name)
    log = launch(name, PRETRAIN, tmp_path / "out", port=free_port)
    check_run(log, tmp_path / "out", kind, Wav2Vec2ForPreTraining, pretrain_examples(), batch=3)


@pytest.mark.slow
def test_fsdp_on_cpu_processes_says_it_runs_data_parallel(tmp_path: Path, free_port: int) -> None:
    """accelerate 1.x shards with FSDP only on GPU-like devices; on CPU processes the FSDP config trains
    plain data parallel (MULTI_CPU, gloo). The run must say so, and still train one model on 2 processes."""
    from hf_w2v2 import Wav2Vec2ForCTC

    log = launch("fsdp", FINETUNE, tmp_path / "out", port=free_port)
    assert "asked for FSDP but accelerate set up MULTI_CPU" in log
    check_run(log, tmp_path / "out", "MULTI_CPU", Wav2Vec2ForCTC, finetune_examples(), batch=4)


@pytest.mark.slow
def test_time_budget_is_one_clock_across_processes(tmp_path: Path, free_port: int) -> None:
    """With ``--max_train_minutes`` the learning rate and the stop follow the time spent: read from each
    process's own clock, the replicas got different learning rates (different weights) and could stop a step
    apart (a hang). Rank 0's clock is broadcast at every step boundary. The run also reads its clips lazily
    in a worker and batches them by seconds (the same batches on both ranks, each rank its share)."""
    from hf_w2v2 import Wav2Vec2ForCTC

    out = tmp_path / "out"
    budget = ["--max_train_minutes", "0.1", "--max_steps", "100000", "--warmup_steps", "0.1"]
    loading = ["--train_loading", "lazy", "--max_batch_seconds", "9", "--dataloader_num_workers", "1"]
    log = launch("ddp", [*FINETUNE, *budget, *loading], out, port=free_port, max_steps=None)
    checksums = dict(re.findall(rf"{CHECKSUM_MARK} rank (\d): (\S+)", log))
    assert set(checksums) == {"0", "1"} and checksums["0"] == checksums["1"], checksums
    state = json.loads((out / "trainer_state.json").read_text())
    assert 2 < state["global_step"] < 100000  # stopped by the budget, after some steps
    assert parameter_checksum(Wav2Vec2ForCTC.from_pretrained(out)) == float(checksums["0"])
