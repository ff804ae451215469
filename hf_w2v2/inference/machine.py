"""What a measured speed depends on: the CPU (model, flags), the accelerator, the library versions
and the model's weights. :func:`cache_key` hashes them all, so a ranking measured elsewhere (another
machine, another torch or onnxruntime, other weights) is never reused. :func:`speed_key` leaves the
weights out: path timings, not accuracy, carry over between models of one architecture.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_w2v2.models import feature_encoder, linear_kernel

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8")
LIBRARIES = ("torch", "torchao", "onnxruntime", "onnx", "openvino", "nncf", "transformers", "hf_w2v2")
CACHE_ENV = "HF_W2V2_CACHE"  # root of hf_w2v2's caches (default ~/.cache/hf_w2v2)
ISA_LIMIT_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN's instruction-set limit (OpenVINO's fork reads it)
# Environment variables that change which kernels run: the libraries' instruction-set limits (with
# them, a CPU's flags overstate what runs, e.g. AVX-512 hardware limited to AVX2 code) and ours.
SPEED_ENV = (
    "ATEN_CPU_CAPABILITY",
    *ISA_LIMIT_ENV,
    "MKL_ENABLE_INSTRUCTIONS",
    "FBGEMM_ENABLE_INSTRUCTIONS",
    feature_encoder.KERNEL_ENV,
    feature_encoder.BATCHING_ENV,
    linear_kernel.KERNEL_ENV,
)


def cpu_info() -> dict[str, Any]:
    """CPU model name and the full flag list (Linux ``/proc/cpuinfo``; elsewhere what ``platform`` says)."""
    model, flags = platform.processor() or platform.machine(), list[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.processor() or platform.machine()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = sorted(value.split())
    except OSError:
        pass
    return {"model": model, "flags": flags}


def speed_flags(flags: Sequence[str]) -> dict[str, bool]:
    """The flags that decide which int8/bf16 kernels a CPU has (for reports)."""
    return {name: name in flags for name in SPEED_FLAGS}


def library_versions() -> dict[str, str | None]:
    """Installed version of every library a path runs on (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["torch"] = torch.__version__
    return versions


def speed_settings() -> dict[str, str]:
    """The :data:`SPEED_ENV` variables set in this process, and the vector code torch dispatches to."""
    settings = {name: os.environ[name] for name in SPEED_ENV if os.environ.get(name)}
    return {**settings, "torch cpu capability": torch.backends.cpu.get_cpu_capability()}


def machine_fingerprint(device: torch.device) -> dict[str, Any]:
    """CPU, accelerator, threads, instruction-set limits and library versions: everything a timing
    depends on but the model."""
    accelerator = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "cpu": cpu_info(),
        "accelerator": accelerator,
        "threads": torch.get_num_threads(),
        "speed settings": speed_settings(),
        "libraries": library_versions(),
    }


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's class, config and every parameter and buffer."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config: Any = getattr(model, "config", None)
    if config is not None:
        digest.update(config.to_json_string(use_diff=False).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# Config entries that name a model or a library, not its compute (library versions are in the machine's).
NOT_ARCHITECTURE = ("_name_or_path", "transformers_version")


def architecture_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's class, config (less :data:`NOT_ARCHITECTURE`) and every parameter and
    buffer's name, shape and dtype, not their values: models that differ only in their weights (the
    checkpoints of one fine-tuning run, runs of one recipe from one pre-trained encoder) run at the same
    speed. Any other config difference (even a training-only setting) counts, to be safe."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config: Any = getattr(model, "config", None)
    if config is not None:
        entries = {k: v for k, v in config.to_dict().items() if k not in NOT_ARCHITECTURE}
        digest.update(json.dumps(entries, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}".encode())
    return digest.hexdigest()


def clips_fingerprint(clips: Sequence[np.ndarray] | None) -> str:
    """sha256 of the calibration clips ("none" without)."""
    if not clips:
        return "none"
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(np.ascontiguousarray(clip, dtype=np.float32).tobytes())
    return digest.hexdigest()


def cache_key(model: nn.Module, device: torch.device, calibration: Sequence[np.ndarray] | None, precision: str) -> str:
    """Hex key naming one measurement: machine fingerprint, model, calibration clips and precision."""
    parts = {
        "machine": machine_fingerprint(device),
        "model": model_fingerprint(model),
        "calibration": clips_fingerprint(calibration),
        "precision": precision,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def speed_key(model: nn.Module, device: torch.device, setting: str) -> str:
    """Hex key naming one set of path timings: machine fingerprint, model architecture and ``setting``
    (how the paths were timed), not the weights, calibration clips or guard."""
    parts = {
        "machine": machine_fingerprint(device),
        "architecture": architecture_fingerprint(model),
        "setting": setting,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def cache_dir() -> str:
    """Where measured rankings and built graphs live."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "hf_w2v2")
    return os.path.join(root, "optimize")


def graph_bytes(model: nn.Module) -> int:
    """Bytes of the model's float32 weights: about the size of its largest cache file (the fp32 ONNX graph;
    the int8 ones take a quarter to a half)."""
    return 4 * sum(p.numel() for p in model.parameters())
