"""Training on machines without a GPU: say ``--use_cpu`` for the user.

transformers' ``TrainingArguments`` needs ``use_cpu=True`` for two things a CPU-only user
expects to just work: ``--bf16`` autocast (refused otherwise: "Your setup doesn't support
bf16/gpu") and multi-process data parallelism under ``torchrun``/``accelerate launch`` (without
it every process silently trains alone, world size 1). bf16 autocast on a CPU with AVX512-BF16 or
AMX is a real speed-up (about 1.7x per audio second for the small CTC recipe on the 2-core AMD
EPYC of our CI machine), so the example scripts add ``--use_cpu True`` whenever torch sees no
accelerator and the user did not choose either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

logger = logging.getLogger(__name__)


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
    return [*argv, "--use_cpu", "True"]
