"""The matrix multiply behind the linear layers in CPU float32 inference: MKL or oneDNN, measured per machine.

Shape legend: N rows (batch x frames), K input features, M output features.

PyTorch runs ``F.linear`` in float32 through MKL, and runs convolutions (and bf16 products) through
oneDNN. MKL takes its AVX-512 code only on Intel CPUs: on a 2-core AMD EPYC Zen 5 (AVX-512) the
product 499 x 768 x 3072 of a feed-forward layer ran at 106 GFLOP/s per core through MKL and at
237 GFLOP/s through oneDNN's matmul (``torch.ops.mkldnn._linear_pointwise``, the op torch's own
inductor calls for CPU linears). An Intel Xeon or an AVX2-only CPU may rank them the other way, so
the choice is timed once per process and setting on the first eligible call (:func:`linear_kernel`),
as the conv kernel is (:func:`hf_w2v2.models.feature_encoder.inference_kernel`).

Both compute the same float32 product; they differ only in summation order (outputs agree to
rounding, about 1e-6 relative). The oneDNN op records no gradient, so it serves only calls that
record none: eval under ``torch.no_grad()`` / ``torch.inference_mode()``. Training, autocast, traced
graphs and other dtypes or devices always take ``F.linear``.
"""

from __future__ import annotations

import contextlib
import logging

import torch
import torch.nn.functional as F
from torch import nn

from .kernel_choice import KernelChoice, best_times
from .validation import tracing

logger = logging.getLogger(__name__)

LINEAR_KERNELS = ("mkl", "onednn")
KERNEL_ENV = "HF_W2V2_LINEAR_KERNEL"  # forces one kernel (e.g. to reproduce a timing)
PROBE_ROUNDS = 5  # interleaved rounds on the first eligible call, best of each kernel kept
CHOICE = KernelChoice(LINEAR_KERNELS, KERNEL_ENV)  # per process: (threads, dtype, weight shape) -> kernel, or forced


def apply_linear(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` for a linear layer, through :func:`linear` when it is a plain ``nn.Linear``
    without hooks; a swapped module (dynamic int8, LoRA) or a hooked one is called as itself."""
    if type(module) is not nn.Linear or module._forward_hooks or module._forward_pre_hooks:
        return module(x)
    return linear(x, module.weight, module.bias)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` (x (..., K), weight (M, K) -> (..., M)), by the measured kernel in
    CPU float32 inference."""
    if not _eligible(x, weight, bias) or linear_kernel(x, weight, bias) == "mkl":
        return F.linear(x, weight, bias)
    return _onednn(x, weight, bias)


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    x, weight = x.contiguous(), weight.contiguous()  # no copy for the model's own calls
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")  # no fused activation


def _eligible(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """CPU float32, no gradient to record, no autocast, not traced, and oneDNN built in."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return (
        x.device.type == "cpu"
        and all(t.dtype == torch.float32 and t.layout == torch.strided for t in tensors)
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
        and not torch.is_autocast_enabled("cpu")
        and not tracing()
        and torch.backends.mkldnn.is_available()
    )


def linear_kernel(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> str:
    """The faster of :data:`LINEAR_KERNELS` on this machine, timed once per process and setting (threads,
    dtype, weight shape: base has four) on the call at hand; ``HF_W2V2_LINEAR_KERNEL`` or
    :func:`use_linear_kernel` forces one. A oneDNN op that fails (a torch build without it) or disagrees
    with ``F.linear`` leaves MKL, with the reason logged."""
    key = (torch.get_num_threads(), x.dtype, tuple(weight.shape))
    return CHOICE.choose(key, lambda: _time_kernels(x, weight, bias))


def _time_kernels(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> str:
    runs = {"mkl": lambda: F.linear(x, weight, bias), "onednn": lambda: _onednn(x, weight, bias)}
    try:
        reference, fast = runs["mkl"](), runs["onednn"]()  # warm-up: oneDNN builds its primitive on the first call
    except (RuntimeError, AttributeError) as error:  # AttributeError: no such op in this torch build
        logger.info("linear kernel: mkl (oneDNN's linear failed: %s)", error)
        return "mkl"
    scale = float(reference.abs().max()) or 1.0
    if fast.shape != reference.shape or float((fast - reference).abs().max()) > 1e-4 * scale:
        logger.info("linear kernel: mkl (oneDNN's linear disagreed with F.linear)")
        return "mkl"
    best = best_times(runs, PROBE_ROUNDS, warm_up=False)  # warmed up above
    chosen = min(best, key=best.__getitem__)
    timings = ", ".join(f"{k} {1000 * t:.2f} ms" for k, t in best.items())
    logger.info("linear kernel: %s (timed on %s x %s: %s)", chosen, tuple(x.shape), tuple(weight.shape), timings)
    return chosen


def use_linear_kernel(kernel: str) -> contextlib.AbstractContextManager[None]:
    """Within the block, eligible linear layers run ``kernel`` instead of the measured choice."""
    return CHOICE.force(kernel)


def clear_linear_kernels() -> None:
    """Forget the measured choices (the next eligible call times them again)."""
    CHOICE.clear()
