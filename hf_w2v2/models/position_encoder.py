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

Under DeepSpeed ZeRO-3 (``from_pretrained`` builds the model inside ``deepspeed.zero.Init``), every
parameter is partitioned as soon as its module is built: the conv's ``weight`` is an empty local
shard when the weight norm is registered, and the norm of it (``right_inverse``, which splits the
weight into g and v) fails with an ``IndexError``. So the weight is gathered whole for the
registration, and g and v are declared as parameters of this module (DeepSpeed's "external
parameters"), so that ZeRO-3 gathers them whenever this module runs, not only inside the
parametrization's own call. Stock transformers does the same in ``Wav2Vec2PositionalConvEmbedding``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
        with _whole_under_zero3(conv.weight):
            self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        _declare_under_zero3(
            self, self.conv.parametrizations.weight.original0, self.conv.parametrizations.weight.original1
        )
        self.trim = 1 if kernel % 2 == 0 else 0
        self.activation = activation(config.feat_extract_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Positional embedding for ``x`` (B, F, D); the caller adds it."""
        y = self.conv(x.transpose(1, 2))  # (B, F, D) -> (B, D, F + trim)
        if self.trim:
            y = y[:, :, : -self.trim]
        return self.activation(y).transpose(1, 2)  # (B, D, F) -> (B, F, D)


def _partitioned(param: torch.Tensor) -> bool:
    """True when ZeRO-3 partitioned ``param`` (built inside ``deepspeed.zero.Init``: it carries a ``ds_id``)."""
    return hasattr(param, "ds_id")


@contextlib.contextmanager
def _whole_under_zero3(param: torch.Tensor) -> Iterator[None]:
    """``param`` whole (gathered from every rank) for the duration when ZeRO-3 partitioned it; a no-op otherwise."""
    if not _partitioned(param):
        yield
        return
    import deepspeed  # only reached when DeepSpeed built the model, so it is installed

    with deepspeed.zero.GatheredParameters(param, modifier_rank=0):
        yield


def _declare_under_zero3(module: nn.Module, *params: torch.Tensor) -> None:
    """Have ZeRO-3 gather ``params`` (owned by a submodule) whenever ``module`` runs."""
    if any(_partitioned(p) for p in params):
        import deepspeed

        for param in params:
            deepspeed.zero.register_external_parameter(module, param)
