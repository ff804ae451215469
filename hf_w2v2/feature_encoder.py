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

import torch
from torch import nn

from .activations import activation
from .configuration import Wav2Vec2Config
from .lengths import conv_output_length


class ConvBlock(nn.Module):
    """Conv1d -> optional norm -> activation."""

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
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_channels, elementwise_affine=True)
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, C_in, T) -> (B, C, T')
        if self.norm == "group":
            x = self.layer_norm(x)
        elif self.norm == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)  # norm over C per frame
        return self.activation(x)


class FeatureEncoder(nn.Module):
    """Stack of :class:`ConvBlock` mapping ``(B, T)`` audio to ``(B, C, F)`` features."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        layers = []
        for i in range(len(config.conv_dim)):
            if config.feat_extract_norm == "layer":
                norm = "layer"
            else:
                norm = "group" if i == 0 else None
            layers.append(ConvBlock(config, i, norm))
        self.conv_layers = nn.ModuleList(layers)
        self.grad_mult = float(getattr(config, "feature_grad_mult", 1.0))
        self.gradient_checkpointing = False

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
        layers = self.conv_layers[:num_layers]
        kernels = [block.conv.kernel_size[0] for block in layers]
        strides = [block.conv.stride[0] for block in layers]
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

    def forward(self, audio: torch.Tensor, start_layer: int = 0) -> torch.Tensor:
        """``audio`` (B, T) -> features (B, C, F).

        With ``start_layer`` k > 0 the input is instead the (B, C_k, F_k) output of the first k
        blocks (see :meth:`prefix`, e.g. computed once for frozen blocks) and only the rest run.
        """
        if start_layer == 0:
            x = audio[:, None, :]  # (B, T) -> (B, 1, T)
        elif 0 < start_layer <= len(self.conv_layers):
            x = audio  # (B, C_k, F_k)
        else:
            raise ValueError(f"start_layer must be in [0, {len(self.conv_layers)}], got {start_layer}")
        for layer in self.conv_layers[start_layer:]:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
            else:
                x = layer(x)
        if self.training and self.grad_mult != 1.0 and not self.frozen:
            x = scale_gradient(x, self.grad_mult)
        return x  # (B, C, F)

    def prefix(self, audio: torch.Tensor, num_layers: int) -> torch.Tensor:
        """Output (B, C_k, F_k) of the first ``num_layers`` blocks for ``audio`` (B, T); gradients flow
        as usual (wrap in ``torch.no_grad()`` for frozen blocks)."""
        if not 0 < num_layers <= len(self.conv_layers):
            raise ValueError(f"num_layers must be in [1, {len(self.conv_layers)}], got {num_layers}")
        x = audio[:, None, :]  # (B, T) -> (B, 1, T)
        for layer in self.conv_layers[:num_layers]:
            x = layer(x)
        return x


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward, gradient multiplied by ``scale`` backward (fairseq ``GradMultiply``)."""
    return x * scale + x.detach() * (1.0 - scale)
