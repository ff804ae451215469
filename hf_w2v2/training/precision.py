"""Training on machines without a GPU: say ``--use_cpu`` for the user.

transformers' ``TrainingArguments`` needs ``use_cpu=True`` for two things a CPU-only user
expects to just work: ``--bf16`` autocast (refused otherwise: "Your setup doesn't support
bf16/gpu") and multi-process data parallelism under ``torchrun``/``accelerate launch`` (without
it every process silently trains alone, world size 1). bf16 autocast on a CPU with AVX512-BF16 or
AMX is a real speed-up (about 1.7x per audio second for the small CTC recipe on the 2-core AMD
EPYC of our CI machine), so the example scripts add ``--use_cpu True`` whenever torch sees no
accelerator and the user did not choose either way.

Whether bf16 pays on a CPU is measured, not read from flags: an AVX512-BF16 Xeon without AMX ran
bf16 inference at 0.65x fp32, an AVX2 EPYC (emulated bf16) at 0.2-0.4x. :func:`check_cpu_bf16`
times one training-sized layer both ways when ``--bf16`` is asked for on a CPU and warns, with the
numbers, when bf16 is not faster.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)

PROBE_SHAPE = (1, 250, 768, 3072)  # batch, frames (5 s), BASE model dim, feed-forward dim: ~2 GFLOP per pass
PROBE_ROUNDS = 3  # interleaved, best of each kept (~0.3 s in all on an idle 2-core CPU)


def time_bf16_vs_fp32(rounds: int = PROBE_ROUNDS) -> tuple[float, float]:
    """Best seconds of one linear layer's forward + backward in fp32 and under bf16 autocast on the CPU."""
    batch, frames, dim, hidden = PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(dim, hidden)
    x = torch.randn(batch, frames, dim, generator=generator)
    best = {False: float("inf"), True: float("inf")}
    for round_ in range(rounds + 1):  # round 0 warms oneDNN up and is not kept
        for bf16 in (False, True):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                layer(x).float().square().mean().backward()
            if round_:
                best[bf16] = min(best[bf16], time.perf_counter() - start)
    return best[False], best[True]


def check_cpu_bf16() -> float:
    """Warn when bf16 autocast is not faster than fp32 on this CPU; returns fp32 time / bf16 time."""
    from hf_w2v2.inference.precision import cpu_has_native_bf16

    fp32, bf16 = time_bf16_vs_fp32()
    ratio = fp32 / bf16
    native = "has native bf16 (AVX512-BF16 or AMX)" if cpu_has_native_bf16() else "only emulates bf16"
    if ratio < 1.0:
        logger.warning(
            "--bf16 on this CPU (which %s): a %dx%d linear layer, forward + backward, ran at %.2fx the fp32 "
            "speed under bf16 autocast (%.1f ms vs %.1f ms fp32): training will be slower than without --bf16",
            native,
            PROBE_SHAPE[2],
            PROBE_SHAPE[3],
            ratio,
            1000 * bf16,
            1000 * fp32,
        )
    else:
        logger.info("--bf16 on this CPU: %.2fx the fp32 speed on a %dx%d linear layer", ratio, *PROBE_SHAPE[2:])
    return ratio


def flag_value(argv: Sequence[str], name: str) -> str | None:
    """The last value given to ``--name`` in ``argv`` (``"True"`` for a bare flag), or None."""
    value = None
    spellings = (f"--{name}", f"--{name.replace('_', '-')}")
    for i, arg in enumerate(argv):
        key, eq, inline = arg.partition("=")
        if key not in spellings:
            continue
        if eq:
            value = inline
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
        else:
            value = "True"
    return value


def has_accelerator() -> bool:
    """True when torch sees a CUDA, XPU or MPS device."""
    if torch.cuda.is_available():
        return True
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return True
    return bool(torch.backends.mps.is_available())


def use_cpu_without_accelerator(argv: Sequence[str], defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``argv`` plus ``--use_cpu True`` when torch sees no accelerator.

    ``defaults`` are option values from a config file. An explicit ``--use_cpu`` (either value,
    on the command line or in the file) is left alone. Under ``accelerate launch`` of a DeepSpeed
    config (``ACCELERATE_USE_DEEPSPEED=true``) the run gets ``--use_cpu False --ddp_backend gloo``
    instead: accelerate turns DeepSpeed off for ``use_cpu`` (the processes would silently run plain
    DDP), and DeepSpeed's CPU accelerator runs ZeRO over gloo.
    """
    argv = list(argv)
    if flag_value(argv, "use_cpu") is not None or "use_cpu" in (defaults or {}) or has_accelerator():
        return argv
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        logger.info("no GPU, DeepSpeed launch: DeepSpeed's CPU accelerator over gloo (--use_cpu False)")
        backend = (
            [] if flag_value(argv, "ddp_backend") or "ddp_backend" in (defaults or {}) else ["--ddp_backend", "gloo"]
        )
        return [*argv, "--use_cpu", "False", *backend]
    logger.info("no GPU: training on the CPU (--use_cpu True; bf16 autocast and torchrun processes work there)")
    bf16 = flag_value(argv, "bf16") or str((defaults or {}).get("bf16", ""))
    if bf16.lower() in ("true", "1", "yes"):
        check_cpu_bf16()
    return [*argv, "--use_cpu", "True"]
