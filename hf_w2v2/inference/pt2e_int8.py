"""Static int8 of a model on core torch: PT2E post-training quantisation, compiled by inductor.

Shape legend: B batch, T samples, F frames, V vocabulary.

An optional path of :func:`hf_w2v2.inference.optimize` (``pip install hf_w2v2[torchao]``): the
PT2E flow left ``torch.ao.quantization`` for torchao. ``torch.export`` captures the eval-mode model
(one clip, its time axis dynamic), torchao's ``X86InductorQuantizer`` puts static int8 (uint8
activations, per-tensor, calibrated on real clips; int8 weights per channel) on every linear, and
inductor (ahead of time, with freezing) lowers the graph to oneDNN int8 GEMMs with fused post-ops
(VNNI where the CPU has it).

What is captured is chosen for that quantizer: the x86 quantizer annotates ``conv2d`` and
``linear`` but not ``conv1d``, so the feature encoder is exported with its matmul-over-windows
kernel (:func:`hf_w2v2.models.feature_encoder.conv_as_matmul`), whose GEMMs it quantises. Weights
computed from parameters (those flattened windows, Q/K/V stacked into one GEMM) are folded into
constants first, and each ``F.linear`` is given the ``source_fn_stack`` that non-strict export
leaves out (torchao 0.18 finds linears by it, else only those inside an ``nn.Linear`` module).

Measured on the AVX-512 VNNI EPYC, issue 33 (2 threads, 10 s clip, CPU time per call): see
:data:`hf_w2v2.inference.paths.CPU_PATHS`' docstring and docs/benchmarks.md.

The compiled package is written to the cache folder and read back from it next time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch._inductor.config
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

from hf_w2v2.files import written_whole
from hf_w2v2.inference.machine import graph_bytes
from hf_w2v2.inference.openvino_int8 import AudioOnly
from hf_w2v2.inference.precision import float32_model
from hf_w2v2.models.feature_encoder import use_inference_kernel

KERNEL = "matmul"  # feature-encoder kernel exported: GEMMs the x86 quantizer can make int8
PROBE_SAMPLES = 8_000  # 0.5 s at 16 kHz: the clip a loaded graph is tried on
PACKAGE_FILE = "pt2e-int8.pt2"  # the compiled package in the cache folder


def import_torchao() -> tuple[Any, Any, Any]:
    """torchao's ``quantize_pt2e``, ``x86_inductor_quantizer`` and ``constant_fold`` modules, or an
    ImportError that says what to install."""
    try:
        import torchao.quantization.pt2e.constant_fold as constant_fold
        import torchao.quantization.pt2e.quantize_pt2e as quantize_pt2e
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86  # registers inductor's int8 passes
    except ImportError as err:
        raise ImportError("the PT2E int8 path needs torchao: pip install 'hf_w2v2[torchao]'") from err
    return quantize_pt2e, x86, constant_fold


def quantized_module(model: nn.Module, clips: Sequence[np.ndarray]) -> nn.Module:
    """``model``'s logits of one clip ``(1, T)`` as an exported ``GraphModule`` (``T`` dynamic) with
    static int8 linears, calibrated on ``clips``."""
    quantize_pt2e, x86, constant_fold = import_torchao()
    if not clips:
        raise ValueError("the PT2E int8 path needs calibration clips")
    example = torch.as_tensor(clips[0], dtype=torch.float32)[None]  # (T,) -> (1, T)
    with torch.no_grad(), use_inference_kernel(KERNEL):
        wrapped = AudioOnly(float32_model(model.eval()))
        program = torch.export.export(wrapped, (example,), dynamic_shapes=({1: Dim.AUTO},))
    graph = program.module()
    constant_fold.constant_fold(graph)  # weights computed from parameters -> constants the quantizer sees
    for node in graph.graph.nodes:
        if node.target == torch.ops.aten.linear.default and node.meta.get("source_fn_stack") is None:
            node.meta["source_fn_stack"] = [(node.name, F.linear)]
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for clip in clips:  # observers record each activation's range
            prepared(torch.as_tensor(clip, dtype=torch.float32)[None])
    return quantize_pt2e.convert_pt2e(prepared)


def compile_package(model: nn.Module, clips: Sequence[np.ndarray], path: str) -> None:
    """:func:`quantized_module` compiled ahead of time by inductor into the package ``path`` (``.pt2``).

    Freezing makes the int8 weights constants that inductor packs for oneDNN's int8 GEMMs. Ahead of
    time rather than ``torch.compile``: no dynamo guards (under ``torch.compile`` the second clip
    length recompiled, a guard failing with "'NoneType' object has no attribute 'size'", torch 2.13),
    and the package is read back by the next process instead of compiled again.
    """
    graph = quantized_module(model, clips)
    example = torch.as_tensor(clips[0], dtype=torch.float32)[None]  # (T,) -> (1, T)
    with torch.no_grad(), torch._inductor.config.patch(freezing=True):
        program = torch.export.export(graph, (example,), dynamic_shapes=({1: Dim.AUTO},))
        torch._inductor.aoti_compile_and_package(program, package_path=path)


class Pt2eInt8:
    """``runner(audio (B, T), mask (B, T) or None) -> logits (B, F, V)``: the PT2E int8 graph of one
    clip (any length), compiled ahead of time and cached in ``folder``.

    A batch runs item by item, each cut to its mask's length: the graph's batch axis is fixed at 1
    (a dynamic one put a guard on the samples' parity into the exported graph), and batching gains
    nothing on the CPUs measured (issue 33). Frames past an item's length are 0 (callers cut there).
    """

    def __init__(self, model: nn.Module, clips: Sequence[np.ndarray], folder: str) -> None:
        import_torchao()
        self.model: Any = model  # a CTC model: frame_lengths() sizes padded batches
        path = os.path.join(folder, PACKAGE_FILE)
        if not os.path.isfile(path):
            with written_whole(path, needs=graph_bytes(model)) as partial:
                compile_package(model, clips, partial)
        self.graph = torch._inductor.aoti_load_package(path)
        self(torch.zeros(1, PROBE_SAMPLES), None)  # a graph that cannot run here fails when the path is built

    def _one(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.graph(audio)  # (1, T) -> (1, F, V)

    def __call__(self, audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        audio = audio.float().cpu()
        if audio.shape[0] == 1 and (mask is None or bool(mask.all())):
            return self._one(audio.contiguous())
        lengths = [audio.shape[1]] * audio.shape[0] if mask is None else mask.sum(1).tolist()
        items = [self._one(row[None, : int(n)].contiguous())[0] for row, n in zip(audio, lengths)]  # (F_i, V) each
        frames = int(self.model.frame_lengths(torch.ones(1, audio.shape[1], dtype=torch.long))[0])
        logits = items[0].new_zeros(len(items), frames, items[0].shape[-1])  # (B, F, V)
        for i, item in enumerate(items):
            logits[i, : item.shape[0]] = item
        return logits
