"""Feature encoder: raw waveform -> latent frames z (paper section 2, "Feature encoder").

Shape legend: B batch, T samples, F frames, C channels.

Seven temporal convolutions (512 channels, kernels 10,3,3,3,3,2,2, strides
5,2,2,2,2,2,2) turn 16 kHz audio into one frame per 20 ms. Two normalisation
layouts exist in the released checkpoints:

* ``"group"`` (base): GroupNorm with one group per channel after the first conv
  only. It normalises each channel over time, so padded zeros change the
  statistics: base models are fed unpadded batches and no attention mask.
* ``"layer"`` (large-lv60): LayerNorm over channels after every conv, which is
  per-frame and therefore safe with padding.

The state-dict keys (``conv_layers.{i}.conv``, ``conv_layers.{i}.layer_norm``)
are those of the Hub checkpoints.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from transformers import GradientCheckpointingLayer

from .activations import activation
from .configuration import Wav2Vec2Config
from .kernel_choice import KernelChoice, best_times
from .lengths import conv_output_length, hop_length, receptive_field
from .validation import tracing

logger = logging.getLogger(__name__)

CONV_KERNELS = ("matmul", "conv1d", "channels-major", "tiled")
KERNEL_ENV = "HF_W2V2_CONV_KERNEL"  # forces one inference kernel (e.g. to reproduce a timing)
PROBE_SAMPLES = 64_000  # 4 s at 16 kHz: the clip each inference kernel is timed on
PROBE_ROUNDS = 3  # interleaved rounds, best of each kernel kept
TILE_SAMPLES = 32_000  # 2 s at 16 kHz: the span of audio each tile of the "tiled" kernel covers
TILED_BLOCKS = 3  # the "tiled" kernel tiles the first three blocks (the widest activations: strides 5, 10, 20)
CHOICE = KernelChoice(CONV_KERNELS, KERNEL_ENV)  # per process: (dtypes, threads, geometry) -> kernel, or forced
# A batch through the stack: all items at once, or one item at a time (each item's activations stay in
# the cache; issue 33 measured batch-8 transcription gaining 1.5x -> 1.9x from it on a 2-core Zen 5).
BATCHINGS = ("items", "batch")
BATCHING_ENV = "HF_W2V2_CONV_BATCHING"  # forces one (e.g. to reproduce a timing)
PROBE_ITEMS = 4  # items of the first batch the two batchings are timed on
BATCHING = KernelChoice(BATCHINGS, BATCHING_ENV)  # per process: (setting, kernel, items) -> batching, or forced


class ConvBlock(GradientCheckpointingLayer):
    """Conv1d -> optional norm -> activation, on frames-major ``(B, F, C)`` tensors.

    A transformers ``GradientCheckpointingLayer``: ``gradient_checkpointing_enable`` makes it
    checkpoint itself with the caller's options, as stock's conv layers do.

    The checkpoint layout is kept (``conv`` is an ``nn.Conv1d``, ``layer_norm`` its norm), but
    activations stay frames-major so that LayerNorm (over C per frame) and the activation run
    on contiguous memory. Training on the CPU uses a matmul over unfolded windows
    (:func:`conv_as_matmul`), elsewhere ``nn.Conv1d`` on a transposed view. ``bench/bench_feature_encoder.py``
    (small config, 8 x 4 s, a 2-core AMD EPYC with AVX2 and no bf16 units, load ~8): the matmul kernel
    trains 1.68x faster than ``nn.Conv1d`` frames-major in fp32 (1.09x under bf16 autocast).

    Inference on the CPU picks its kernel per machine by measurement (:func:`inference_kernel`):
    on that AVX2 EPYC the matmul kernel ran fp32 / bf16 inference 1.28x / 1.58x faster than a
    channels-major stack, while on an AVX-512 Xeon stock's channels-major oneDNN stack was 1.2x
    faster than the matmul kernel (issue 33), so neither can be hard-coded. The "tiled" kernel runs
    the channels-major stack's first blocks over 2 s tiles of audio (:meth:`FeatureEncoder._forward_tiled`).

    The TorchScript trace (OpenVINO's converter, :mod:`hf_w2v2.inference.openvino_int8`) gets the
    kernel forced by :func:`use_inference_kernel`, else channels-major: after NNCF the matmul kernel
    (an int8 GEMM over windows, LayerNorm on contiguous channels) took 1.5x less CPU time than
    int8 convolutions for the small model (128 channels) but 1.35x more for BASE (512), so
    :func:`hf_w2v2.inference.optimize` builds and times both (issue 33).
    """

    def __init__(self, config: Wav2Vec2Config, index: int, norm: str | None) -> None:
        super().__init__()
        in_channels = 1 if index == 0 else config.conv_dim[index - 1]
        out_channels = config.conv_dim[index]
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size=config.conv_kernel[index],
            stride=config.conv_stride[index],
            bias=config.conv_bias,
        )
        self.norm = norm
        self.layer_norm: nn.Module
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_channels, elementwise_affine=True)
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor, kernel: str | None = None) -> torch.Tensor:
        """``x`` (B, F_in, C_in) -> (B, F_out, C). ``kernel``: "matmul" (:func:`conv_as_matmul`, the eager
        CPU default) or "conv1d" (``nn.Conv1d`` on transposed views: other devices and traced graphs)."""
        if kernel is None:  # matmul on the CPU in eager mode; graphs (compile, export, ONNX) get the standard conv op
            kernel = "matmul" if x.device.type == "cpu" and not tracing() else "conv1d"
        # The matmul kernel needs the float weight; a stand-in module (e.g. an int8 conv) runs as a conv.
        if kernel == "matmul" and isinstance(self.conv, nn.Conv1d):
            y = conv_as_matmul(x, self.conv)  # (B, F_in, C_in) -> (B, F_out, C)
        else:
            y = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, C_in, F_in) -> (B, C, F_out) -> (B, F_out, C)
        if self.norm == "group":
            # GroupNorm with one group per channel normalises each channel over time: (B, C, F) layout.
            return self.activation(self.layer_norm(y.transpose(1, 2))).transpose(1, 2)
        if self.norm == "layer":
            y = self.layer_norm(y)  # over C, per frame
        return self.activation(y)

    def forward_channels_major(
        self, x: torch.Tensor, group_affine: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Stock's layout: ``x`` (B, C_in, F_in) -> (B, C, F_out), ``nn.Conv1d`` (oneDNN) with no
        transposes except around LayerNorm (over C per frame). ``group_affine``: the GroupNorm as the
        per-item scale and shift (B, C, 1) it amounts to over the whole clip (:func:`group_norm_affine`),
        for a tile of it."""
        y = self.conv(x)  # (B, C_in, F_in) -> (B, C, F_out)
        if self.norm == "group" and group_affine is not None:
            scale, shift = group_affine
            y = torch.addcmul(shift, y, scale)  # (B, C, F_out) * (B, C, 1) + (B, C, 1)
        elif self.norm == "group":
            y = self.layer_norm(y)
        elif self.norm == "layer":
            y = self.layer_norm(y.transpose(1, 2)).transpose(1, 2)  # (B, F, C) for the norm, back to (B, C, F)
        return self.activation(y)


def conv_as_matmul(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Unpadded ``conv(x)`` for frames-major ``x`` (B, F_in, C_in), as one matmul -> (B, F_out, C_out).

    Output frame t sees input frames ``[t * stride, t * stride + kernel)``; :class:`FrameWindows`
    lays those windows out as rows and the weight is flattened the same way. On CPUs this beats
    oneDNN's bf16 conv1d and its layout conversions, and LayerNorm needs no transposes around it
    (``bench/bench_pretrain_step.py``).
    """
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    if torch.is_autocast_enabled(x.device.type):  # cast before windowing: one half-size copy, same values
        x = x.to(torch.get_autocast_dtype(x.device.type))
    windows = FrameWindows.apply(x, kernel, stride)  # (B, F_in, C_in) -> (B, F_out, kernel x C_in)
    weight = conv.weight.transpose(1, 2).flatten(1)  # (C_out, C_in, kernel) -> (C_out, kernel x C_in)
    return F.linear(windows, weight, conv.bias)  # (B, F_out, kernel x C_in) -> (B, F_out, C_out)


class FrameWindows(torch.autograd.Function):
    """Windows of ``kernel`` frames every ``stride`` frames: (B, F_in, C) -> (B, F_out, kernel x C).

    Row t holds frames ``t * stride ... t * stride + kernel - 1`` one after the other. The backward
    pass adds the window gradients back with ``kernel`` strided adds of whole frames (autograd's
    generic ``unfold`` backward was the slowest op of a CPU pre-training step).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
        ctx.kernel, ctx.stride, ctx.input_shape = kernel, stride, x.shape
        # (B, F_in, C) -> (B, F_out, C, kernel) view -> (B, F_out, kernel, C) -> (B, F_out, kernel x C) copy
        return x.unfold(1, kernel, stride).transpose(2, 3).flatten(2)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        kernel, stride = ctx.kernel, ctx.stride
        batch, _, channels = ctx.input_shape
        num_out = grad.shape[1]
        grad = grad.reshape(batch, num_out, kernel, channels)  # (B, F_out, kernel x C) -> (B, F_out, kernel, C)
        grad_x = grad.new_zeros(ctx.input_shape)  # (B, F_in, C)
        for j in range(kernel):  # frame j of every window came from input frame t * stride + j
            grad_x[:, j : j + stride * (num_out - 1) + 1 : stride] += grad[:, :, j]
        return grad_x, None, None


class FeatureEncoder(nn.Module):
    """Stack of :class:`ConvBlock` mapping ``(B, T)`` audio to ``(B, C, F)`` features."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        layers = []
        for i in range(len(config.conv_dim)):
            norm: str | None = "layer" if config.feat_extract_norm == "layer" else "group" if i == 0 else None
            layers.append(ConvBlock(config, i, norm))
        self.conv_layers = nn.ModuleList(layers)
        self.grad_mult = float(getattr(config, "feature_grad_mult", 1.0))
        self.gradient_checkpointing = False  # mirrors the blocks' flag (set by gradient_checkpointing_enable)

    def freeze(self, num_layers: int | None = None) -> None:
        """Stop training the encoder (the usual setting for CTC fine-tuning).

        ``num_layers`` freezes only the first N conv blocks: they run at the highest frame
        rates and cost most of the backward pass, while the later ones stay trainable.
        """
        if num_layers is not None and not 0 <= num_layers <= len(self.conv_layers):
            raise ValueError(f"num_layers must be in [0, {len(self.conv_layers)}], got {num_layers}")
        for layer in self.conv_layers[:num_layers]:
            for param in layer.parameters():
                param.requires_grad = False

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.parameters())

    @property
    def frame_local(self) -> bool:
        """True when every norm acts on each frame alone (layer norm or none): right-padding a batch
        then leaves the valid frames' outputs unchanged. Group norm (base) normalises over time."""
        return all(layer.norm != "group" for layer in self.conv_layers)

    def output_frames(self, lengths: torch.Tensor | int, num_layers: int | None = None) -> torch.Tensor | int:
        """Frames after the first ``num_layers`` blocks (all by default) for ``lengths`` samples."""
        blocks: list[ConvBlock] = list(self.conv_layers[:num_layers])  # type: ignore[arg-type]  # ModuleList items
        kernels = [block.conv.kernel_size[0] for block in blocks]
        strides = [block.conv.stride[0] for block in blocks]
        return conv_output_length(lengths, kernels, strides)

    @property
    def num_frozen_layers(self) -> int:
        """How many leading conv blocks are frozen (all of them after ``freeze()``)."""
        count = 0
        for layer in self.conv_layers:
            if any(p.requires_grad for p in layer.parameters()):
                break
            count += 1
        return count

    def forward(self, audio: torch.Tensor, kernel: str | None = None) -> torch.Tensor:
        """``audio`` (B, T) -> features (B, C, F), a transposed view of a frames-major (B, F, C) tensor
        (so ``.transpose(1, 2)`` gives contiguous frames). ``kernel``: see :meth:`ConvBlock.forward`."""
        return self.forward_from(audio[:, None, :], 0, kernel)  # (B, T) -> (B, 1, T)

    def forward_from(self, features: torch.Tensor, start_layer: int, kernel: str | None = None) -> torch.Tensor:
        """Run blocks ``start_layer ...`` on ``features`` (B, C_k, F_k), the output of the first
        ``start_layer`` blocks (:meth:`prefix`; ``start_layer=0`` takes audio as (B, 1, T)) -> (B, C, F)."""
        if not 0 <= start_layer <= len(self.conv_layers):
            raise ValueError(f"start_layer must be in [0, {len(self.conv_layers)}], got {start_layer}")
        if kernel is None and not self.training and features.device.type == "cpu" and not tracing():
            kernel = inference_kernel(self, features, start_layer)
            if features.shape[0] > 1 and inference_batching(self, features, start_layer, kernel) == "items":
                return self._forward_items(features, start_layer, kernel)
        if kernel is None and tracing():  # a graph takes the forced kernel; a TorchScript trace else stock's layout
            kernel = CHOICE.forced_by_block() or ("channels-major" if torch.jit.is_tracing() else None)
        if kernel == "tiled" and (tracing() or not self._tileable(features, start_layer)):
            kernel = "channels-major"  # a graph would freeze the tile count; see _tileable for the rest
        if kernel == "tiled":
            return self._forward_tiled(features, start_layer)
        if kernel == "channels-major":
            blocks: list[ConvBlock] = list(self.conv_layers[start_layer:])  # type: ignore[arg-type]  # ModuleList items
            for block in blocks:
                features = block.forward_channels_major(features)  # (B, C_k, F_k) -> (B, C, F)
            return features
        x = features.transpose(1, 2)  # (B, C_k, F_k) -> (B, F_k, C_k)
        for layer in self.conv_layers[start_layer:]:
            if self.training and not x.requires_grad and not any(p.requires_grad for p in layer.parameters()):
                with torch.no_grad():  # a frozen block on constant input: nothing to record or checkpoint
                    x = layer(x, kernel)
                continue
            if layer.gradient_checkpointing and self.training and not x.requires_grad:
                # Reentrant checkpointing passes gradients to a block's weights only through inputs that require them.
                x = x.detach().requires_grad_(True)
            x = layer(x, kernel)
        if self.training and self.grad_mult != 1.0 and not self.frozen:
            x = scale_gradient(x, self.grad_mult)
        return x.transpose(1, 2)  # (B, F, C) -> (B, C, F)

    def _forward_items(self, features: torch.Tensor, start_layer: int, kernel: str) -> torch.Tensor:
        """Blocks ``start_layer ...`` on each item of ``features`` (B, C_k, F_k) alone, with ``kernel``
        -> (B, C, F), a transposed view of frames-major (B, F, C). Every block works within one item
        (GroupNorm too: per item and channel), so the result is the batch's; each item's activations
        stay in the cache where a whole batch's would go through memory."""
        out: torch.Tensor | None = None
        for i in range(features.shape[0]):
            y = self.forward_from(features[i : i + 1], start_layer, kernel)  # (1, C, F)
            if out is None:
                out = y.new_empty(features.shape[0], y.shape[2], y.shape[1])  # (B, F, C)
            out[i] = y[0].transpose(0, 1)  # (C, F) -> (F, C)
        assert out is not None  # forward_from is only called with B > 1 here
        return out.transpose(1, 2)  # (B, F, C) -> (B, C, F)

    def _tileable(self, features: torch.Tensor, start_layer: int) -> bool:
        """The tiled kernel needs at least one output frame, and a GroupNorm only where it comes first
        with a float ``nn.Conv1d`` (its statistics are computed from that block's input)."""
        blocks: list[ConvBlock] = list(self.conv_layers[start_layer:])  # type: ignore[arg-type]  # ModuleList items
        if not blocks or self._frames_from(features, start_layer, len(self.conv_layers)) < 1:
            return False
        return all(b.norm != "group" for b in blocks[1:]) and (
            blocks[0].norm != "group" or type(blocks[0].conv) is nn.Conv1d
        )

    def _forward_tiled(self, features: torch.Tensor, start_layer: int) -> torch.Tensor:
        """Blocks ``start_layer ...`` on ``features`` (B, C_k, F_k), the first :data:`TILED_BLOCKS` of the
        stack over :data:`TILE_SAMPLES` of audio at a time, the others over the whole clip.

        Each tile of frames is computed from the input span it sees (its receptive field; the overlap
        between tiles, under 1% of the input, is computed twice), so the activations of the wide early
        layers (64, 32 and 16 MB for 10 s of base) stay in the cache instead of making round trips
        through memory. A GroupNorm over time (base's first block) cannot see a tile alone: its
        statistics for the whole clip come first (:func:`group_norm_affine`). Outputs agree with the
        other kernels to fp32 rounding. Base, 10 s, on a 2-core AMD EPYC Zen 5 (AVX-512) under load
        4: 371 ms against 663 ms channels-major (best of 7, 2 threads); tiling all seven blocks was
        as fast at best but its median doubled, each of its 5x more small ops waiting for a thread
        the other sessions had taken.
        """
        end = max(start_layer, TILED_BLOCKS)
        tiled: list[ConvBlock] = list(self.conv_layers[start_layer:end])  # type: ignore[arg-type]  # ModuleList items
        rest: list[ConvBlock] = list(self.conv_layers[end:])  # type: ignore[arg-type]  # ModuleList items
        affine = group_norm_affine(features, tiled[0]) if tiled and tiled[0].norm == "group" else None
        if tiled:
            kernels, strides = [b.conv.kernel_size[0] for b in tiled], [b.conv.stride[0] for b in tiled]
            field, hop = receptive_field(kernels, strides), hop_length(strides)  # in input frames of block start_layer
            frames = self._frames_from(features, start_layer, end)
            upstream: list[ConvBlock] = list(self.conv_layers[:end])  # type: ignore[arg-type]  # ModuleList items
            tile = max(1, TILE_SAMPLES // hop_length([b.conv.stride[0] for b in upstream]))  # frames per tile
            out: torch.Tensor | None = None
            for first in range(0, frames, tile):
                last = min(frames, first + tile)
                x = features[:, :, first * hop : (last - 1) * hop + field]  # (B, C_k, span of the tile's frames)
                x = tiled[0].forward_channels_major(x, affine)
                for block in tiled[1:]:
                    x = block.forward_channels_major(x)  # (B, C_in, F_in) -> (B, C, F_out)
                if out is None:
                    out = x.new_empty(x.shape[0], x.shape[1], frames)  # (B, C, F)
                out[:, :, first:last] = x
            assert out is not None  # _tileable: at least one frame
            features = out
        for block in rest:
            features = block.forward_channels_major(features)  # (B, C_in, F_in) -> (B, C, F_out)
        return features

    def _frames_from(self, features: torch.Tensor, start_layer: int, end_layer: int) -> int:
        """Output frames of blocks ``start_layer ... end_layer - 1`` for ``features`` (B, C_k, F_k)."""
        blocks: list[ConvBlock] = list(self.conv_layers[start_layer:end_layer])  # type: ignore[arg-type]  # ModuleList
        kernels, strides = [b.conv.kernel_size[0] for b in blocks], [b.conv.stride[0] for b in blocks]
        return int(conv_output_length(features.shape[-1], kernels, strides))

    def prefix(self, audio: torch.Tensor, num_layers: int) -> torch.Tensor:
        """Output (B, C_k, F_k) of the first ``num_layers`` blocks for ``audio`` (B, T); gradients flow
        as usual (wrap in ``torch.no_grad()`` for frozen blocks). A transposed view of (B, F_k, C_k)."""
        if not 0 < num_layers <= len(self.conv_layers):
            raise ValueError(f"num_layers must be in [1, {len(self.conv_layers)}], got {num_layers}")
        x = audio[:, :, None]  # (B, T) -> (B, T, 1)
        for layer in self.conv_layers[:num_layers]:
            x = layer(x)
        return x.transpose(1, 2)  # (B, F_k, C_k) -> (B, C_k, F_k)


def group_norm_affine(x: torch.Tensor, block: ConvBlock) -> tuple[torch.Tensor, torch.Tensor]:
    """``block``'s GroupNorm (one group per channel) of ``block.conv(x)`` over the whole of ``x``
    (B, C_in, F_in), as the per-item scale and shift (B, C, 1) it applies, without the conv's output.

    The conv is linear: output channel c at frame t is ``w_c . u_t + b_c``, where the window ``u_t``
    holds the C_in x kernel input values it sees (10 audio samples in base's first block). So its
    mean over frames is ``w_c . mean(u) + b_c`` and its variance ``w_c^T Cov(u) w_c``: a 10 x 10
    covariance, in float64, serves all 512 channels.
    """
    conv, norm = block.conv, block.layer_norm
    assert isinstance(conv, nn.Conv1d) and isinstance(norm, nn.GroupNorm)  # _tileable checked both
    windows = x.double().unfold(2, conv.kernel_size[0], conv.stride[0])  # (B, C_in, F_in) -> (B, C_in, F, kernel)
    windows = windows.transpose(1, 2).flatten(2)  # (B, F, C_in, kernel) -> (B, F, C_in x kernel)
    mean = windows.mean(dim=1)  # (B, C_in x kernel)
    centred = windows - mean[:, None]  # (B, F, C_in x kernel)
    cov = centred.transpose(1, 2) @ centred / windows.shape[1]  # (B, C_in x kernel, C_in x kernel)
    weight = conv.weight.double().flatten(1)  # (C, C_in, kernel) -> (C, C_in x kernel)
    out_mean = mean @ weight.T  # (B, C)
    if conv.bias is not None:
        out_mean = out_mean + conv.bias.double()
    out_var = ((weight @ cov) * weight).sum(dim=-1)  # (B, C, C_in x kernel) -> (B, C): w_c^T Cov w_c
    scale = norm.weight.double() / torch.sqrt(out_var + norm.eps)  # (B, C)
    shift = norm.bias.double() - out_mean * scale  # (B, C)
    dtype = conv.weight.dtype
    return scale.to(dtype)[..., None], shift.to(dtype)[..., None]  # (B, C) -> (B, C, 1)


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward, gradient multiplied by ``scale`` backward (fairseq ``GradMultiply``)."""
    return x * scale + x.detach() * (1.0 - scale)


def inference_kernel(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int = 0) -> str:
    """The fastest of :data:`CONV_KERNELS` for eval-mode CPU inference on this machine, timed once per
    process and setting (device, dtypes, threads, conv geometry) on a probe cut from ``features``.

    Every kernel computes the same convolution (fp32 outputs agree to rounding, well inside the parity
    tolerance with stock transformers); only their speed differs between CPUs. The probe is the first
    item, at most :data:`PROBE_SAMPLES` samples long; the kernels run interleaved, best of
    :data:`PROBE_ROUNDS`, so a busy machine slows them alike. ``HF_W2V2_CONV_KERNEL`` forces one.
    """
    key = _setting(encoder, features, start_layer)
    return CHOICE.choose(key, lambda: _time_kernels(encoder, features, start_layer))


def inference_batching(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int, kernel: str) -> str:
    """How ``kernel`` runs a batch (B > 1) in eval-mode CPU inference: ``"items"`` one at a time or
    ``"batch"`` all at once, whichever was faster on the first :data:`PROBE_ITEMS` items of the first
    batch of this setting (at most :data:`PROBE_SAMPLES` each; interleaved, best of :data:`PROBE_ROUNDS`).
    ``HF_W2V2_CONV_BATCHING`` forces one."""
    key = (*_setting(encoder, features, start_layer), kernel, min(features.shape[0], PROBE_ITEMS))
    return BATCHING.choose(key, lambda: _time_batchings(encoder, features, start_layer, kernel))


def _setting(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int) -> tuple[Any, ...]:
    """What a kernel's speed depends on besides the input's length: dtypes, threads, conv geometry."""
    autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    blocks: list[ConvBlock] = list(encoder.conv_layers[start_layer:])  # type: ignore[arg-type]  # ModuleList items
    # An int8 stand-in conv (another class) is timed apart from the float one.
    geometry = tuple(
        (type(b.conv).__name__, b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size, b.conv.stride, b.norm)
        for b in blocks
    )
    return (features.dtype, autocast, torch.get_num_threads(), start_layer, geometry)


def _probe(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int, items: int) -> torch.Tensor:
    """The first ``items`` of ``features`` (B, C_k, F_k), each cut to :data:`PROBE_SAMPLES` of audio
    -> (<= items, C_k, <= 4 s worth of frames of block ``start_layer``)."""
    frames = int(encoder.output_frames(PROBE_SAMPLES, start_layer)) if start_layer else PROBE_SAMPLES
    return features[:items, :, :frames]


def _time_kernels(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int) -> str:
    probe = _probe(encoder, features, start_layer, items=1)
    runs = {kernel: functools.partial(encoder.forward_from, probe, start_layer, kernel) for kernel in CONV_KERNELS}
    with torch.no_grad():
        best = best_times(runs, PROBE_ROUNDS)
    chosen = min(best, key=best.__getitem__)
    timings = ", ".join(f"{k} {1000 * t:.1f} ms" for k, t in best.items())
    logger.info("feature encoder inference kernel: %s (timed on %d samples: %s)", chosen, probe.shape[-1], timings)
    return chosen


def _time_batchings(encoder: FeatureEncoder, features: torch.Tensor, start_layer: int, kernel: str) -> str:
    probe = _probe(encoder, features, start_layer, items=PROBE_ITEMS)
    runs = {
        "items": functools.partial(encoder._forward_items, probe, start_layer, kernel),
        "batch": functools.partial(encoder.forward_from, probe, start_layer, kernel),
    }
    with torch.no_grad():
        best = best_times(runs, PROBE_ROUNDS)
    chosen = min(best, key=best.__getitem__)
    timings = ", ".join(f"{k} {1000 * t:.1f} ms" for k, t in best.items())
    shape = f"{probe.shape[0]} x {probe.shape[-1]}"
    logger.info("feature encoder batches (%s kernel): %s (timed on %s samples: %s)", kernel, chosen, shape, timings)
    return chosen


def use_inference_kernel(kernel: str) -> contextlib.AbstractContextManager[None]:
    """Within the block, eval-mode CPU inference runs ``kernel`` instead of the measured choice, and so do
    graphs traced or exported inside it (OpenVINO's converter, torch.export for PT2E int8)."""
    return CHOICE.force(kernel)


def clear_inference_kernels() -> None:
    """Forget the measured kernel and batching choices (the next eval-mode call times them again)."""
    CHOICE.clear()
    BATCHING.clear()
