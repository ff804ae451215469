"""The inference paths :func:`hf_w2v2.inference.optimize` chooses among, each built as a runner
``runner(audio (B, T), mask (B, T) or None) -> logits (B, F, V)`` float32 on the model's device.

Shape legend: B batch, T samples, F frames, V vocabulary.

CPU:

* ``fp32``: the eager model as given (its feature encoder times its conv kernels itself,
  :func:`hf_w2v2.models.feature_encoder.inference_kernel`); ``fp32-matmul`` / ``fp32-conv1d`` /
  ``fp32-channels-major`` / ``fp32-tiled`` force one kernel.
* ``bf16``: bfloat16 autocast (fast only where the CPU multiplies bfloat16 natively).
* ``int8``: torch dynamic int8 (:func:`hf_w2v2.inference.precision.quantize_int8`).
* ``onnx`` / ``onnx-int8`` / ``onnx-int8-static``: onnxruntime on the exported graph, fp32, dynamic
  int8 MatMuls (:func:`~hf_w2v2.inference.export.quantize_onnx`), or static QDQ int8 with convolutions,
  calibrated on real clips (:func:`~hf_w2v2.inference.export.quantize_onnx_static`).
* ``openvino-int8-static``: OpenVINO with NNCF post-training quantisation of the graph converted
  from the torch module (calibrated on the same clips,
  :class:`~hf_w2v2.inference.openvino_int8.OpenVinoInt8`), when ``openvino`` and ``nncf`` are
  installed (an optional backend, not a dependency); ``openvino-int8-matmul-static`` traces the
  feature encoder's matmul kernel instead of stock's convolutions (faster for narrow encoders).
* ``pt2e-int8-static``: core torch's static int8, PT2E post-training quantisation (torchao's x86
  inductor quantizer, calibrated on the same clips) compiled ahead of time by inductor
  (:class:`~hf_w2v2.inference.pt2e_int8.Pt2eInt8`), when ``torchao`` is installed (an optional
  extra); skipped with the reason logged where the export or compile fails (no C++ compiler...).

GPU: ``fp32``, ``bf16`` and ``fp16`` autocast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_w2v2.files import written_whole
from hf_w2v2.inference.chunked import logits_on_grid
from hf_w2v2.inference.export import OnnxRunner, export_onnx, quantize_onnx, quantize_onnx_static
from hf_w2v2.inference.machine import graph_bytes
from hf_w2v2.inference.openvino_int8 import OpenVinoInt8
from hf_w2v2.inference.openvino_int8 import graph_file as openvino_graph_file
from hf_w2v2.inference.precision import cpu_has_native_bf16, quantize_int8
from hf_w2v2.inference.pt2e_int8 import PACKAGE_FILE as PT2E_PACKAGE_FILE
from hf_w2v2.inference.pt2e_int8 import Pt2eInt8
from hf_w2v2.models.feature_encoder import CONV_KERNELS, use_inference_kernel

Runner = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

CPU_PATHS = (
    "fp32",
    *(f"fp32-{k}" for k in CONV_KERNELS),
    "bf16",
    "int8",
    "onnx",
    "onnx-int8",
    "onnx-int8-static",
    "openvino-int8-static",
    "openvino-int8-matmul-static",
    "pt2e-int8-static",
)
GPU_PATHS = ("fp32", "bf16", "fp16")
# Dynamic int8: each activation is scaled by the range of the whole batch, so a clip's logits change
# with the clips (and padding) run beside it; transcription runs these one clip at a time.
BATCH_DEPENDENT_PATHS = ("int8", "onnx-int8")
# Eager torch on oneDNN, which builds kernels per input shape: inputs go on the length grid
# (hf_w2v2.inference.chunked.grid_length) where the model's frames do not depend on padding.
GRID_PATHS = ("fp32", *(f"fp32-{k}" for k in CONV_KERNELS), "bf16")
MAX_CALIBRATION_CLIPS = 32  # static quantisers see at most this many clips


def uses_grid(model: nn.Module, path: str) -> bool:
    """Whether ``path`` runs ``model`` on the length grid (:func:`~hf_w2v2.inference.chunked.grid_length`):
    an eager torch path (:data:`GRID_PATHS`) on the CPU, with a feature encoder whose frames padding leaves
    unchanged (``FeatureEncoder.frame_local``: layer norm)."""
    device = next(model.parameters()).device
    base = getattr(model, "base_encoder", None)
    encoder = getattr(base(), "feature_extractor", None) if callable(base) else None
    return device.type == "cpu" and path in GRID_PATHS and bool(getattr(encoder, "frame_local", False))


def on_grid(runner: Runner, model: nn.Module) -> Runner:
    """``runner`` with each input padded on to the length grid and its logits cut back to the input's frames
    (the same to float rounding where :func:`uses_grid`)."""
    config: Any = model.config
    return lambda audio, mask: logits_on_grid(runner, audio, mask, config)


def eager_runner(model: nn.Module, autocast: torch.dtype | None = None, kernel: str | None = None) -> Runner:
    """The model itself, optionally under autocast or with one conv kernel forced."""
    device = next(model.parameters()).device

    def run(audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        audio, mask = audio.to(device), None if mask is None else mask.to(device)
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            if kernel is None:
                return model(audio, attention_mask=mask).logits.float()
            with use_inference_kernel(kernel):
                return model(audio, attention_mask=mask).logits.float()

    return run


def onnx_runner(name: str, model: nn.Module, clips: Sequence[np.ndarray], folder: str) -> Runner:
    """onnxruntime sessions of path ``name`` with torch's thread count (all intra-op, sequential): the graph
    without a mask input for unpadded calls (built now), the masked one at the first padded call."""
    sessions: dict[bool, OnnxRunner] = {}
    lock = threading.Lock()  # two first padded calls at once: one export (torch.export is not thread-safe)

    def session(masked: bool) -> OnnxRunner:
        with lock:
            if masked not in sessions:
                sessions[masked] = OnnxRunner(onnx_file(name, model, clips, folder, masked), torch.get_num_threads())
            return sessions[masked]

    session(False)  # a failure shows when the path is built, not at its first use

    def run(audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None or bool(mask.all()):
            return torch.from_numpy(session(False)(audio.numpy()))
        return torch.from_numpy(session(True)(audio.numpy(), mask.numpy()))

    return run


def build_path(name: str, model: nn.Module, calibration: Sequence[np.ndarray] | None, folder: str) -> Runner:
    """The runner of path ``name`` for ``model``; graphs are written to (and reused from) ``folder``."""
    device = next(model.parameters()).device
    clips = list(calibration or [])[:MAX_CALIBRATION_CLIPS]
    if name == "fp32":
        return eager_runner(model)
    if name.startswith("fp32-"):
        return eager_runner(model, kernel=name.removeprefix("fp32-"))
    if name in ("bf16", "fp16"):
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError(f"{torch.cuda.get_device_name(device)} does not support bfloat16")
        if name == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            raise RuntimeError("this CPU has no AVX512-BF16/AMX: bfloat16 would only be emulated")
        if name == "fp16" and device.type != "cuda":
            raise RuntimeError("fp16 autocast is a GPU path")
        return eager_runner(model, torch.bfloat16 if name == "bf16" else torch.float16)
    if device.type != "cpu":
        raise RuntimeError(f"{name} runs on the CPU only, the model is on {device}")
    if name == "int8":
        return eager_runner(quantize_int8(model))
    if name.startswith("onnx"):
        return onnx_runner(name, model, clips, folder)
    if name == "openvino-int8-static":
        return OpenVinoInt8(model, clips, folder, kernel="channels-major")
    if name == "openvino-int8-matmul-static":
        return OpenVinoInt8(model, clips, folder, kernel="matmul")
    if name == "pt2e-int8-static":
        return Pt2eInt8(model, clips, folder)
    raise ValueError(f"unknown inference path {name!r}")


def onnx_file(name: str, model: nn.Module, clips: Sequence[np.ndarray], folder: str, masked: bool = True) -> str:
    """The ONNX graph of path ``name`` in ``folder``, with a mask input or without (``masked``), exported /
    quantised on first use (an int8 graph in the folder is used without its fp32 one)."""
    tag = "" if masked else "-unmasked"
    fp32 = os.path.join(folder, f"fp32{tag}.onnx")
    path = fp32 if name == "onnx" else os.path.join(folder, f"{name}{tag}.onnx")
    if os.path.isfile(path):
        return path
    if name not in ("onnx", "onnx-int8") and not clips:
        raise ValueError("static int8 needs calibration clips")
    if not os.path.isfile(fp32):
        with written_whole(fp32, needs=graph_bytes(model)) as part:
            export_onnx(model, part, attention_mask=masked)  # (exported as float32: export.for_export)
    if name == "onnx":
        return fp32
    with written_whole(path, needs=os.path.getsize(fp32)) as part:
        if name == "onnx-int8":
            quantize_onnx(fp32, part)
        else:
            quantize_onnx_static(fp32, part, clips)
    return path


def graph_files(name: str) -> tuple[str, ...]:
    """The files path ``name`` builds in its cache folder (none for the eager paths): what a choice keeps of
    the graphs its measurement built (:meth:`hf_w2v2.inference.optimize.FastModel._remove_unchosen_graphs`)."""
    if name.startswith("onnx"):
        stem = "fp32" if name == "onnx" else name
        return (f"{stem}.onnx", f"{stem}-unmasked.onnx")
    if name.startswith("openvino"):
        kernel = "matmul" if name == "openvino-int8-matmul-static" else "channels-major"
        xml = [openvino_graph_file(kernel, masked) for masked in (False, True)]
        return (*xml, *(os.path.splitext(f)[0] + ".bin" for f in xml))
    if name == "pt2e-int8-static":
        return (PT2E_PACKAGE_FILE,)
    return ()


GRAPH_FILES = frozenset(file for name in CPU_PATHS for file in graph_files(name))  # every path's
