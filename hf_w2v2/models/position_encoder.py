"""Relative positional information from a convolution (paper section 2, "Contextualized representations").

Shape legend: B batch, F frames, D model dim.

A grouped Conv1d (kernel 128, 16 groups, padding 64) under weight normalisation
over the kernel axis (``dim=2``), followed by GELU; its output is added to the
Transformer input. This corresponds to ``conv_pos``/``conv_pos_groups`` in fairseq.
With an even kernel the padded convolution yields one extra frame, which is
dropped from the end.

The weight norm uses ``torch.nn.utils.parametrizations.weight_norm``, so the
state-dict keys are ``conv.parametrizations.weight.original0`` (g) and
``original1`` (v); checkpoints with the legacy ``conv.weight_g``/``conv.weight_v``
keys are renamed on load (see :mod:`hf_w2v2.models.interop`).
"""

from __future__ import annotations

import torch
from torch import nn

from .activations import activation
from .configuration import Wav2Vec2Config


class ConvPositionEncoder(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        kernel = config.num_conv_pos_embeddings
        conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=kernel,
            padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel % 2 == 0 else 0
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Positional embedding for ``x`` (B, F, D); the caller adds it."""
        y = self.conv(x.transpose(1, 2))  # (B, F, D) -> (B, D, F + trim)
        if self.trim:
            y = y[:, :, : -self.trim]
        return self.activation(y).transpose(1, 2)  # (B, D, F) -> (B, F, D)
