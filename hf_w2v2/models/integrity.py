"""Weights that cannot be right: NaN or infinite values in a loaded model.

A damaged ``model.safetensors`` (a few kB overwritten, a disk error, a run that diverged
before its save) loads without complaint and then outputs NaN, which greedy decoding turns
into empty transcripts: a silent wrong result. ``Wav2Vec2PreTrainedModel.from_pretrained``
checks every floating-point parameter and buffer once after loading (one pass over the
weights, ~30 ms for 95 M parameters on a CPU) and names the tensors that are not finite.
"""

from __future__ import annotations

import os

import torch
from torch import nn

MAX_NAMED = 10  # tensors named in the error before "... and N more"


class NonFiniteWeightsError(ValueError):
    """A loaded model holds NaN/inf values; ``tensors`` maps each bad tensor's name to its count of them."""

    def __init__(self, source: str, tensors: dict[str, int]) -> None:
        self.tensors = tensors
        names = [f"{name} ({count} values)" for name, count in list(tensors.items())[:MAX_NAMED]]
        more = f", ... and {len(tensors) - MAX_NAMED} more" if len(tensors) > MAX_NAMED else ""
        super().__init__(
            f"{source}: {len(tensors)} weight tensor(s) hold NaN or inf values: {', '.join(names)}{more}. "
            "The weights file is damaged or the run that saved it diverged; use another checkpoint."
        )


def nonfinite_tensors(module: nn.Module) -> dict[str, int]:
    """Name -> number of non-finite values, for every floating-point parameter and buffer that has some."""
    bad = {}
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point() or tensor.is_meta or tensor.numel() == 0:
                continue
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                bad[name] = count
    return bad


def check_finite_weights(module: nn.Module, source: str | os.PathLike | None = None) -> None:
    """Raise :class:`NonFiniteWeightsError` naming every tensor of ``module`` with NaN/inf values."""
    bad = nonfinite_tensors(module)
    if bad:
        raise NonFiniteWeightsError(str(source or type(module).__name__), bad)
