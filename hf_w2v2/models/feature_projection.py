"""Feature projection: LayerNorm -> Linear(C -> D) -> dropout.

Shape legend: B batch, F frames, C encoder channels, D model dim.

Returns the projected frames for the Transformer and the normalised (not
projected) features, which feed the quantizer (``extract_features``).
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import Wav2Vec2Config
from .linear_kernel import apply_linear


class FeatureProjection(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = self.layer_norm(features)  # (B, F, C)
        projected = self.dropout(apply_linear(self.projection, normed))  # (B, F, D)
        return projected, normed
