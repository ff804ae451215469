"""Activation functions by the names used in Hub config files."""

from __future__ import annotations

from torch import nn


def activation(name: str) -> nn.Module:
    """Module for a config activation name (``gelu`` is exact erf GELU, ``gelu_new`` the tanh form)."""
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_new":
        return nn.GELU(approximate="tanh")
    if name in ("silu", "swish"):
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    if name == "selu":
        return nn.SELU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")
