"""OpenVINO int8 of a model: converted from the torch module, quantised by NNCF, compiled for latency.

Shape legend: B batch, T samples, F frames, V vocabulary.

The optional backend of :func:`hf_w2v2.inference.optimize` (``pip install hf_w2v2[openvino]``).
``openvino.convert_model`` traces the eval-mode module itself (TorchScript tracer; the model's shape
checks step aside while it traces, :func:`hf_w2v2.models.validation.tracing`), which gives the graph
OpenVINO's own transformations expect (fused attention, convolutions it can run in int8): the route
optimum-intel takes, and faster than converting our ONNX export. NNCF's post-training quantisation
(transformer preset: MatMuls, convolutions and the attention's inputs in int8, SmoothQuant, bias
correction) is calibrated on real clips.

What the tracer sees is chosen for OpenVINO (issue 33, CPU time per 10 s call, interleaved with
the optimum-intel peer on an AVX-512 VNNI EPYC): Q, K, V as three projections (a packed GEMM's
split costs layout copies) and one of two feature-encoder kernels, ``kernel``: ``channels-major``
(stock's layout: int8 convolutions; BASE 250 ms, the peer 249) or ``matmul`` (windows x weight:
int8 GEMMs, LayerNorm over contiguous channels; the small model 30 ms vs the peer's 47, but BASE
333 ms), so :mod:`hf_w2v2.inference.paths` offers both and ``optimize()`` times them. Tried and left out:
a channels-major stack with LayerNorm written over axis 1 (fast, but OpenVINO's low-precision
transformations then compute wrong values: cosine 0.03 to fp32 on a tiny model, right with them
off) and the first convolution kept in floating point (slower).

Two graphs: one of the audio alone, for single clips and unpadded batches (the attention mask's
arithmetic left out), and one with the attention mask, for padded batches, built at their first use.
Both are written to the cache folder and read back from it next time.

oneDNN's instruction-set limit (``ONEDNN_MAX_CPU_ISA``, e.g. ``AVX2`` to try an AVX-512 CPU as an
AVX2 one) reaches OpenVINO's kernels but not its choice of bf16 as the default inference precision,
nor its GroupNorm kernel: OpenVINO 2026.4 then crashes (SIGSEGV, which no fallback can catch). So
where bf16 would be emulated the graph is compiled in f32 (OpenVINO's own default on such CPUs), and a
group-norm feature encoder (BASE) under such a limit is refused with the reason.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hf_w2v2.files import written_whole
from hf_w2v2.inference.machine import ISA_LIMIT_ENV, graph_bytes
from hf_w2v2.inference.precision import cpu_has_native_bf16, float32_model
from hf_w2v2.models.feature_encoder import use_inference_kernel
from hf_w2v2.quiet import bars_wanted

KERNELS = ("channels-major", "matmul")  # feature-encoder kernels traced (hf_w2v2.models.feature_encoder)
PERFORMANCE_HINT = "LATENCY"  # one request at a time, all threads on it


def compile_config(threads: int) -> dict[str, Any]:
    """OpenVINO CPU settings: ``threads``, latency hint, and f32 where bf16 would be emulated."""
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": PERFORMANCE_HINT}
    if not cpu_has_native_bf16():  # OpenVINO reads the CPU's flags, not an instruction-set limit
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


def check_isa_limit(model: nn.Module) -> None:
    """RuntimeError for a group-norm feature encoder under an instruction-set limit (see the module notes)."""
    limit = next((f"{n}={os.environ[n]}" for n in ISA_LIMIT_ENV if os.environ.get(n)), None)
    config: Any = getattr(model, "config", None)
    if limit and getattr(config, "feat_extract_norm", None) == "group":
        raise RuntimeError(f"OpenVINO 2026.4 crashes on a group-norm feature encoder under {limit}")


class AudioOnly(nn.Module):
    """``model(input_values).logits``, or with ``attention_mask``: the traced and exported signatures."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_values, attention_mask=attention_mask, return_dict=True).logits


def import_openvino() -> tuple[Any, Any]:
    """The ``openvino`` and ``nncf`` modules, or an ImportError that says what to install."""
    try:
        import nncf
        import openvino
    except ImportError as err:
        raise ImportError("the OpenVINO path needs openvino and nncf: pip install 'hf_w2v2[openvino]'") from err
    return openvino, nncf


def quantized_graph(model: nn.Module, clips: Sequence[np.ndarray], masked: bool, kernel: str) -> Any:
    """``ov.Model`` of ``model`` (dynamic batch and time axes) traced with the feature encoder's
    ``kernel``, int8 by NNCF calibrated on ``clips``."""
    ov, nncf = import_openvino()
    if not clips:
        raise ValueError("the OpenVINO int8 path needs calibration clips")
    wrapped = AudioOnly(float32_model(model.eval()))
    example = torch.as_tensor(clips[0], dtype=torch.float32)[None]
    shapes = [ov.PartialShape([-1, -1])] * (2 if masked else 1)
    with torch.no_grad(), warnings.catch_warnings(), use_inference_kernel(kernel):
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the eager-only checks it passes by
        inputs = (example, torch.ones(example.shape, dtype=torch.long)) if masked else (example,)
        graph = ov.convert_model(wrapped, example_input=inputs, input=shapes)
    feeds = [[np.asarray(c)[None]] + ([np.ones((1, len(c)), np.int64)] if masked else []) for c in clips]
    # NNCF draws its progress bars on stdout, where transcripts go: on stderr instead, under --quiet nowhere.
    with contextlib.redirect_stdout(sys.stderr if bars_wanted() else io.StringIO()):
        return nncf.quantize(graph, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds))


def graph_file(kernel: str, masked: bool) -> str:
    """The name of the int8 graph traced with the feature encoder's ``kernel`` (its weights: the same stem's
    ``.bin``), with a mask input or without."""
    return f"openvino-int8-{kernel}{'-masked' if masked else ''}.xml"


class OpenVinoInt8:
    """``runner(audio (B, T), mask (B, T) or None) -> logits (B, F, V)`` on OpenVINO's CPU plugin,
    with torch's thread count; graphs traced with the feature encoder's ``kernel``, cached in ``folder``."""

    def __init__(
        self, model: nn.Module, clips: Sequence[np.ndarray], folder: str, kernel: str = "channels-major"
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        self.ov, _ = import_openvino()
        check_isa_limit(model)
        self.model, self.clips, self.folder, self.kernel = model, list(clips), folder, kernel
        self.core = self.ov.Core()
        self.compiled: dict[bool, Any] = {}
        self._lock = threading.Lock()  # one graph built and compiled at a time
        self._requests = threading.local()  # each thread's inference requests, by graph
        self._compiled(masked=False)  # built now: a failure shows when the path is built, not later

    def _compiled(self, masked: bool) -> Any:
        with self._lock:
            if masked not in self.compiled:
                path = os.path.join(self.folder, graph_file(self.kernel, masked))
                if not os.path.isfile(path):
                    needs = graph_bytes(self.model)  # the space is checked before the graph is built
                    with written_whole(path, companions=(".bin",), needs=needs) as part:  # x.part-...xml and .bin
                        self.ov.save_model(quantized_graph(self.model, self.clips, masked, self.kernel), part)
                threads = torch.get_num_threads()
                self.compiled[masked] = self.core.compile_model(path, "CPU", compile_config(threads))
            return self.compiled[masked]

    def _request(self, masked: bool) -> Any:
        """This thread's inference request on the graph: one request run from two threads at once fails
        ("Infer Request is busy"), as the compiled model's own ``__call__`` does (it keeps one), which made a
        server's second concurrent request drop this path. Requests on one compiled model queue on its stream."""
        requests: dict[bool, Any] = self._requests.__dict__.setdefault("by_graph", {})
        if masked not in requests:
            requests[masked] = self._compiled(masked).create_infer_request()
        return requests[masked]

    def __call__(self, audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        audio = audio.float().cpu()
        if mask is None or bool(mask.all()):
            outputs = self._request(masked=False).infer([audio.numpy()])
        else:
            outputs = self._request(masked=True).infer([audio.numpy(), mask.cpu().to(torch.long).numpy()])
        return torch.from_numpy(np.asarray(outputs[0]))  # infer() copies its outputs (share_outputs=False)
