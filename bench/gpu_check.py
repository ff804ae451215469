"""Everything a GPU machine should confirm about hf_w2v2, in one run and one table (issue 37.5).

    bash bench/gpu_check.sh            # the way to run it (checks for CUDA first)
    python bench/gpu_check.py [--quick]
    python bench/gpu_check.py --cpu_dry_run   # the same code on the CPU with 1 s clips: a test, not a measurement

Checks, each a row of the table printed at the end:

1. **parity** with stock transformers on CUDA, fp32 (TF32 off) and bf16 autocast: CTC logits of both
   families' small configs (tests/oracle.py), padded batch, same weights. fp32 passes at a relative
   difference under 1e-4; bf16 under 3x stock's own bf16-vs-fp32 difference (and under 0.05).
2. **fine-tuning step** and **pre-training step** of the base config with SDPA attention under bf16
   autocast, ours and stock (same weights): losses finite and equal within bf16 noise, and the step time
   of each (median, interleaved) -> audio seconds per second and the ratio stock / ours.
3. **inference throughput**, base config, 10 s clips, bf16: ours vs stock.
4. **DDP on every GPU present** (needs 2+): ``accelerate launch`` of examples/accelerate/ddp.yaml over all
   GPUs, fine-tuning and pre-training the tiny model for 3 steps in fp32 (tests/strategy_worker.py); the
   fine-tuning losses equal the 1-GPU run with the same global batch (rtol 1e-4), every rank ends with
   the same weights.

Exit status 0 when every row is ``ok`` or ``skip``, 1 otherwise. Under 10 minutes on one GPU (about two
on an H100; most of it is starting processes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_pretrain_step import PRETRAIN_FIELDS, ours_step, stock_step  # noqa: E402  # path set just above
from oracle import audio_batch, make_pair, rel_diff  # noqa: E402

import hf_w2v2  # noqa: E402
from hf_w2v2.models.configuration import base  # noqa: E402
from hf_w2v2.training.distributed import CHECKSUM_MARK  # noqa: E402

RATE = 16_000  # samples per second
DEVICE = torch.device("cuda")  # main() sets the CPU for --cpu_dry_run
NO_RANDOMNESS = dict(
    hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, final_dropout=0.0,
    layerdrop=0.0, mask_time_prob=0.0,
)  # fmt: skip  # so that ours and stock compute the same training step
Row = tuple[str, str, str]  # check, ok / FAIL / skip, detail


def ok(passed: bool) -> str:
    return "ok" if passed else "FAIL"


def parity_rows(device: torch.device) -> list[Row]:
    """CTC logits, ours vs stock, fp32 and bf16, both families."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32: TF32 convolutions differ at 1e-3
    rows = []
    audio, mask = audio_batch([16000, 12000, 8000])
    audio, mask = audio.to(device), mask.to(device)
    for family in ("base", "large-lv60"):
        stock, ours = make_pair("Wav2Vec2ForCTC", family)
        stock, ours = stock.to(device), ours.to(device)
        logits = {}
        for dtype in (None, torch.bfloat16):
            with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits[dtype] = (ours(audio, attention_mask=mask).logits, stock(audio, attention_mask=mask).logits)
        fp32 = rel_diff(*logits[None])
        rows.append((f"parity fp32 {family}", ok(fp32 < 1e-4), f"logits rel. diff {fp32:.1e} (< 1e-4)"))
        bf16 = rel_diff(*logits[torch.bfloat16])
        noise = rel_diff(logits[torch.bfloat16][1].float(), logits[None][1])  # stock bf16 vs stock fp32
        limit = min(max(3 * noise, 1e-3), 0.05)
        detail = f"logits rel. diff {bf16:.1e} (< {limit:.1e}: 3x stock's bf16 error {noise:.1e})"
        rows.append((f"parity bf16 {family}", ok(bf16 < limit), detail))
    return rows


def interleaved(steps: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median seconds of each step, the steps run in turn so that clocks and load hit all alike."""
    for step in steps.values():
        step()  # warm-up: kernels chosen, memory allocated
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(step())
    return {name: statistics.median(values) for name, values in times.items()}


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return run


def base_pair(name: str, **fields: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Ours and stock (SDPA attention) base-size models with the same random weights, on the GPU."""
    torch.manual_seed(0)
    config = base(**fields)
    ours = getattr(hf_w2v2, name)(config)
    stock_config = transformers.Wav2Vec2Config(**{**base().to_dict(), **fields})
    stock = getattr(transformers, name)._from_config(stock_config, attn_implementation="sdpa")
    missing, unexpected = stock.load_state_dict(ours.state_dict(), strict=False)
    if unexpected or [k for k in missing if "masked_spec_embed" not in k]:
        raise RuntimeError(f"weights do not map: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return ours.to(DEVICE), stock.to(DEVICE)


def finetune_row(batch: int, seconds: float, repeats: int) -> Row:
    """One CTC step (forward, backward) of base under bf16 autocast, ours vs stock."""
    ours, stock = base_pair("Wav2Vec2ForCTC", vocab_size=32, ctc_loss_reduction="mean", **NO_RANDOMNESS)
    for model in (ours, stock):
        model.freeze_feature_encoder()
        model.train()
    audio = torch.randn(batch, int(seconds * RATE), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    labels = torch.randint(1, 32, (batch, int(seconds * 8)), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    losses: dict[str, float] = {}

    def step(name: str, model: torch.nn.Module) -> Callable[[], object]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                loss = model(audio, labels=labels).loss
            loss.backward()
            losses[name] = float(loss)

        return run

    times = interleaved({"ours": timed(step("ours", ours)), "stock": timed(step("stock", stock))}, repeats)
    return speed_row("fine-tuning step bf16 SDPA", losses, times, batch * seconds, rtol=0.02)


def pretrain_row(batch: int, seconds: float, repeats: int) -> Row:
    """One pre-training step of base under bf16 autocast: ours draws masks and negatives on the GPU, stock on
    the host with numpy (its documented recipe); bench/bench_pretrain_step.py."""
    ours, stock = base_pair("Wav2Vec2ForPreTraining", **PRETRAIN_FIELDS)
    ours.train(), stock.train()
    audio = torch.randn(batch, int(seconds * RATE), generator=torch.Generator().manual_seed(0)).to(DEVICE)
    attention = torch.ones_like(audio, dtype=torch.long)
    grad_norms: dict[str, float] = {}

    def step(name: str, model: torch.nn.Module, fn: Callable[..., None]) -> Callable[[], object]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                fn(model, audio, attention)
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grad_norms[name] = float(torch.stack([g.float().norm() for g in grads]).norm())

        return run

    steps = {"ours": timed(step("ours", ours, ours_step)), "stock": timed(step("stock", stock, stock_step))}
    times = interleaved(steps, repeats)
    # Masks and negatives are random draws, so the losses are not comparable; finite gradients are the check.
    finite = all(torch.isfinite(torch.tensor(v)).item() for v in grad_norms.values())
    rate = batch * seconds / times["ours"]
    detail = f"ours {rate:.0f} audio-s/s, stock / ours time {times['stock'] / times['ours']:.2f}x, grads finite"
    return ("pre-training step bf16 SDPA", ok(finite), detail)


def speed_row(check: str, losses: dict[str, float], times: dict[str, float], audio_s: float, rtol: float) -> Row:
    close = abs(losses["ours"] - losses["stock"]) <= rtol * abs(losses["stock"])
    rate = audio_s / times["ours"]
    detail = (
        f"loss ours {losses['ours']:.4f} stock {losses['stock']:.4f}; ours {rate:.0f} audio-s/s, "
        f"stock / ours time {times['stock'] / times['ours']:.2f}x"
    )
    return (check, ok(close), detail)


def inference_row(batch: int, seconds: float, repeats: int) -> Row:
    ours, stock = base_pair("Wav2Vec2ForCTC", vocab_size=32)
    ours.eval(), stock.eval()
    audio = torch.randn(batch, int(seconds * RATE), generator=torch.Generator().manual_seed(0)).to(DEVICE)

    def forward(model: torch.nn.Module) -> Callable[[], object]:
        def run() -> torch.Tensor:
            with torch.inference_mode(), torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                return model(audio).logits

        return run

    times = interleaved({"ours": timed(forward(ours)), "stock": timed(forward(stock))}, repeats)
    ratio = times["stock"] / times["ours"]
    detail = f"ours {batch * seconds / times['ours']:.0f} audio-s/s, stock / ours time {ratio:.2f}x (>= 0.9)"
    if DEVICE.type != "cuda":  # the CPU dry run runs the code once on 1 s clips: its times judge nothing
        return ("inference base bf16 SDPA", "ok", detail.replace("(>= 0.9)", "(not judged in a dry run)"))
    return ("inference base bf16 SDPA", ok(ratio >= 0.9), detail)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_args(start: Path, out: Path, scale: int) -> list[str]:
    common = ["--max_steps", "3", "--logging_steps", "1", "--learning_rate", "1e-3", "--seed", "0"]
    common += ["--report_to", "none", "--disable_tqdm", "True", "--save_strategy", "no"]
    finetune = ["--model_name_or_path", str(start / "ctc"), "--train_data", str(ROOT / "tests/fixtures/finetune/train")]
    finetune += ["--do_train", "--per_device_train_batch_size", str(2 * scale), "--eval_strategy", "no"]
    pretrain = ["--model_name_or_path", str(start / "pre"), "--train_source", str(ROOT / "tests/fixtures/pretrain")]
    pretrain += ["--max_seconds", "1.0", "--per_device_train_batch_size", str(scale)]
    return [
        *finetune,
        *common,
        "--output_dir",
        str(out / "ft"),
        ":::",
        *pretrain,
        *common,
        "--output_dir",
        str(out / "pt"),
    ]


def ddp_row() -> Row:
    gpus = torch.cuda.device_count()
    if gpus < 2:
        return ("DDP on all GPUs", "skip", f"{gpus} GPU: DDP needs 2 or more")
    worker = str(ROOT / "tests" / "strategy_worker.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        subprocess.run([sys.executable, worker, "--make-start", str(root / "start")], env=env, check=True)
        single = [sys.executable, worker, *worker_args(root / "start", root / "single", scale=gpus)]
        done = subprocess.run(single, env={**env, "CUDA_VISIBLE_DEVICES": "0"}, capture_output=True, text=True)
        if done.returncode != 0:
            return ("DDP on all GPUs", "FAIL", "1-GPU reference run failed: " + done.stderr[-300:])
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "examples/accelerate/ddp.yaml"]
        launch += ["--num_processes", str(gpus), "--main_process_port", str(free_port()), "--mixed_precision", "no"]
        done = subprocess.run(
            [*launch, worker, *worker_args(root / "start", root / "ddp", scale=1)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            return ("DDP on all GPUs", "FAIL", "launch failed: " + (done.stdout + done.stderr)[-300:])
        losses = {name: losses_of(root / name / "ft") for name in ("single", "ddp")}
        sums = {rank: value for rank, value in re.findall(rf"{CHECKSUM_MARK} rank (\d+): (\S+)", done.stdout)}
        equal = all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(losses["ddp"], losses["single"], strict=True))
        one_model = len(set(sums.values())) == 1 and len(sums) == gpus
        detail = f"{gpus} GPUs, fine-tuning losses {losses['ddp']} vs 1 GPU {losses['single']}, ranks agree {one_model}"
        return ("DDP on all GPUs", ok(equal and one_model), detail)


def losses_of(out: Path) -> list[float]:
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    return [round(entry["loss"], 5) for entry in history if "loss" in entry]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer timed repeats and smaller batches")
    parser.add_argument(
        "--cpu_dry_run", action="store_true", help="run the checks' code on the CPU with 1 s clips (not a measurement)"
    )
    args = parser.parse_args()
    global DEVICE
    if args.cpu_dry_run:
        DEVICE = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU (torch.cuda.is_available() is False): nothing to check here")
        return 2
    device = DEVICE
    repeats, batch, seconds = (3, 2, 10.0) if args.quick else (10, 4, 10.0)
    if args.cpu_dry_run:
        repeats, batch, seconds = 1, 1, 1.0
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run)"
    started = time.perf_counter()
    rows: list[Row] = [("device", "ok", f"{name}, {torch.cuda.device_count()} GPU(s), torch {torch.__version__}")]
    checks: dict[str, Callable[[], list[Row]]] = {
        "parity": lambda: parity_rows(device),
        "fine-tuning step": lambda: [finetune_row(batch, seconds, repeats)],
        "pre-training step": lambda: [pretrain_row(batch, seconds, repeats)],
        "inference": lambda: [inference_row(batch, seconds, repeats)],
        "DDP on all GPUs": lambda: [ddp_row()],
    }
    for title, check in checks.items():
        print(f"gpu_check: {title} ...", flush=True)
        try:
            rows += check()
        except Exception as error:  # a crash is a failed row, and the other checks still run
            rows.append((title, "FAIL", f"{type(error).__name__}: {error}"[:300]))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    width = max(len(check) for check, _, _ in rows)
    print(f"\nhf_w2v2 GPU check ({time.perf_counter() - started:.0f} s)")
    print(f"{'check':{width}}  result  detail")
    for check, result, detail in rows:
        print(f"{check:{width}}  {result:6}  {detail}")
    return 0 if all(result != "FAIL" for _, result, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
