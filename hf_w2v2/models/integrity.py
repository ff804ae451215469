"""Weights that cannot be right: NaN or infinite values in a loaded model.

A damaged ``model.safetensors`` (a few kB overwritten, a disk error, a run that diverged
before its save) loads without complaint and then outputs NaN, which greedy decoding turns
into empty transcripts: a silent wrong result. ``Wav2Vec2PreTrainedModel.from_pretrained``
checks every floating-point parameter and buffer once after loading (one pass over the
weights, ~30 ms for 95 M parameters on a CPU) and warns, naming the tensors that are not
finite: it keeps stock transformers' contract (such weights load). hf_w2v2's own tools refuse
them with :func:`check_finite_weights`.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

logger = logging.getLogger(__name__)

MAX_NAMED = 10  # tensors named in the error before "... and N more"


def _describe(source: str, tensors: dict[str, int]) -> str:
    names = [f"{name} ({count} values)" for name, count in list(tensors.items())[:MAX_NAMED]]
    more = f", ... and {len(tensors) - MAX_NAMED} more" if len(tensors) > MAX_NAMED else ""
    return f"{source}: {len(tensors)} weight tensor(s) hold NaN or inf values: {', '.join(names)}{more}"


class NonFiniteWeightsError(ValueError):
    """A loaded model holds NaN/inf values; ``tensors`` maps each bad tensor's name to its count of them."""

    def __init__(self, source: str, tensors: dict[str, int]) -> None:
        self.tensors = tensors
        super().__init__(
            f"{_describe(source, tensors)}. The weights file is damaged or the run that saved it diverged; "
            "use another checkpoint."
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


def warn_nonfinite_weights(module: nn.Module, source: str | os.PathLike | None = None) -> dict[str, int]:
    """Log a warning naming every tensor of ``module`` with NaN/inf values; return them (name -> count).

    What ``from_pretrained`` does, as stock transformers loads such weights too; the package's own
    tools then refuse them with :func:`check_finite_weights`.
    """
    bad = nonfinite_tensors(module)
    if bad:
        logger.warning(
            "%s. LOADED ANYWAY, as transformers does: the outputs will be NaN. hf_w2v2's tools (transcribe, "
            "export, serve, training) refuse this model; hf_w2v2.models.integrity.nonfinite_tensors(model) "
            "lists the tensors.",
            _describe(str(source or type(module).__name__), bad),
        )
    return bad


def check_finite_weights(module: nn.Module, source: str | os.PathLike | None = None) -> None:
    """Raise :class:`NonFiniteWeightsError` naming every tensor of ``module`` with NaN/inf values.

    The one check every hf_w2v2 tool makes on a model it loaded (Transcriber, CLI, export,
    serving, the trainers' starting weights and resumed checkpoints).
    """
    bad = nonfinite_tensors(module)
    if bad:
        raise NonFiniteWeightsError(str(source or type(module).__name__), bad)
