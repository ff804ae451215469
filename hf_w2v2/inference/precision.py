"""Inference precision: exact fp32, bfloat16 autocast, or int8 weights with dynamic activation scales.

Shape legend: B batch, T samples, F frames, C channels.

* ``"fp32"``: the model as trained; the reference every other path is measured against.
* ``"bf16"``: bfloat16 autocast over the model's fp32 weights (logits come back in float32).
  Only worth it where the hardware multiplies bfloat16 natively: CUDA GPUs with bf16 support,
  CPUs with AVX512-BF16 or AMX. Elsewhere oneDNN emulates it, slower than fp32 and less accurate,
  so :func:`resolve_precision` falls back to fp32 with a logged warning (``allow_emulated=True``
  keeps bf16, e.g. to measure it).
* ``"int8"``: :func:`quantize_int8`: every ``nn.Linear`` (attention, feed-forward, projection,
  head) and every convolution of the feature encoder except the first (1 input channel, no
  GEMM worth quantising) run as int8 GEMMs with per-channel weight scales and a per-call
  activation scale (``torch.ao`` dynamic quantisation, fbgemm/x86 kernels). CPU only; the
  positional convolution (grouped, 128 taps) stays fp32.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from hf_w2v2.models.feature_encoder import ConvBlock

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8")
KEEP_FLOAT = ("project_q", "kernel")  # Linear layers whose weight the model reads directly (pre-training, TDNN)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bfloat16 matmuls in hardware on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def float32_model(model: nn.Module) -> nn.Module:
    """``model`` itself where every parameter is float32, else a float32 copy: the graphs built from a model
    (ONNX, OpenVINO, PT2E) are float32, and building one must not convert the caller's bf16 / fp16 model in place."""
    if all(p.dtype == torch.float32 for p in model.parameters()):
        return model
    return copy.deepcopy(model).float()


def resolve_precision(precision: str, device: torch.device, allow_emulated: bool = False) -> str:
    """The precision that will actually run on ``device``; raises for unknown names and for int8
    on a GPU, logs and falls back to fp32 for bf16 the device would only emulate."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8" and device.type != "cpu":
        raise ValueError(f"int8 dynamic quantisation runs on the CPU only, not on {device}; use bf16 there")
    if precision == "bf16" and not allow_emulated:
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"{torch.cuda.get_device_name(device)} does not support bfloat16; use fp32")
        if device.type == "cpu" and not cpu_has_native_bf16():
            logger.warning(
                "bf16 requested but this CPU has no AVX512-BF16/AMX: bfloat16 would be emulated (slower "
                "than fp32 and less accurate); running fp32 instead"
            )
            return "fp32"
    return precision


class Int8Conv1d(nn.Module):
    """An unpadded ``nn.Conv1d`` (groups=1) as one int8 GEMM over unfolded windows.

    Takes and returns channels-major tensors like the conv it replaces: (B, C_in, F_in) ->
    (B, C_out, F_out). Row t of the GEMM input holds the ``kernel`` input frames of output
    frame t, flattened (C_in, kernel) like the conv weight.
    """

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding != (0,) or conv.dilation != (1,):
            raise ValueError("Int8Conv1d replaces unpadded, undilated, ungrouped convolutions only")
        self.kernel_size, self.stride = conv.kernel_size, conv.stride  # as nn.Conv1d has them (geometry readers)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        dense = nn.Linear(conv.in_channels * conv.kernel_size[0], conv.out_channels, bias=conv.bias is not None)
        with torch.no_grad():
            dense.weight.copy_(conv.weight.flatten(1))  # (C_out, C_in, kernel) -> (C_out, C_in x kernel)
            if conv.bias is not None:
                dense.bias.copy_(conv.bias)
        dense.qconfig = per_channel_dynamic_qconfig  # type: ignore[assignment]
        self.linear = DynamicQuantLinear.from_float(dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        windows = x.unfold(2, self.kernel_size[0], self.stride[0])  # (B, C_in, F_in) -> (B, C_in, F_out, kernel) view
        windows = windows.permute(0, 2, 1, 3).reshape(b, windows.shape[2], -1)  # -> (B, F_out, C_in x kernel)
        return self.linear(windows).transpose(1, 2)  # (B, F_out, C_out) -> (B, C_out, F_out)


def quantize_int8(model: nn.Module, convolutions: bool = True, inplace: bool = False) -> nn.Module:
    """int8 copy of ``model`` for CPU inference (eval mode): dynamic quantisation of every
    ``nn.Linear`` and, with ``convolutions``, of the feature encoder's convolutions after the first.

    Works for every hf_w2v2 model class (attention calls its projections as modules once they
    are no longer plain ``nn.Linear``). The copy keeps the original's config and ``forward``.
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if convolutions:
        for module in list(model.modules()):
            if isinstance(module, ConvBlock) and module.conv.in_channels > 1:
                module.conv = Int8Conv1d(module.conv)  # type: ignore[assignment]
    # Pre-training reads project_q's weight dtype; the x-vector TDNN convolves with its kernel's weight.
    names = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if type(module) is nn.Linear and name.split(".")[-1] not in KEEP_FLOAT
    }
    return quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)


def prepare_for_inference(
    model: nn.Module, precision: str, device: torch.device, allow_emulated: bool = False
) -> tuple[nn.Module, str]:
    """``model`` in eval mode on ``device`` for ``precision``; returns it and the precision in effect."""
    precision = resolve_precision(precision, device, allow_emulated)
    model = model.to(device).eval()
    if precision == "int8":
        model = quantize_int8(model, inplace=True)
    return model, precision
