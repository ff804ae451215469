"""What ``from_pretrained`` checks after transformers has read a checkpoint into one of our classes.

Stock ``from_pretrained`` fills what it finds and reports the rest in a key table: a
``config.json`` with fewer Transformer blocks than the weights (or 0), or a ``feat_extract_norm``
that does not match them, loads "successfully" and outputs something else than the model that was
saved. Legitimate loads also leave keys out (a pre-trained encoder has no CTC head, a CTC model has
no quantizer, a new language adapter has no weights yet), so the rule is about the encoder body
only (:func:`architecture_mismatch`): an encoder key the file holds that the config does not build,
or an encoder key the config builds that a file holding the encoder lacks, means the config and the
weights are not one model. A file with no encoder weights at all (transformers' own
"nuke every weight" test) loads as stock does, initialised at random, with its key table.

Weights with NaN/inf values load as in stock, with a loud warning naming the tensors
(:func:`~hf_w2v2.models.integrity.warn_nonfinite_weights`); the package's own tools refuse them
with :func:`~hf_w2v2.models.integrity.check_finite_weights`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from torch import nn

from .feature_projection import FeatureProjection
from .position_encoder import ConvPositionEncoder

BASE_PREFIX = "wav2vec2."
ENCODER_BODY = ("feature_extractor.", "feature_projection.", "encoder.")
"""Key prefixes (after ``wav2vec2.``) of the encoder every head shares: what the config's geometry builds."""
MAY_BE_NEW = re.compile(r"\.adapter_layer\.")
"""Encoder keys a file may lack legitimately: MMS language adapters added to a model trained without them."""
MAX_KEYS_NAMED = 6  # key groups quoted in the error before "... (N tensors in all)"
_NUMBERED_BLOCK = re.compile(r"^(.*?)\.(\d+)\.(.*)$")


class ConfigWeightsMismatchError(ValueError):
    """``config.json`` and the weights describe different encoders (other depth or normalisation)."""


def _body(key: str) -> str | None:
    """The key inside the shared encoder, or None for heads, quantizer and the mask embedding."""
    key = key[len(BASE_PREFIX) :] if key.startswith(BASE_PREFIX) else key
    return key if key.startswith(ENCODER_BODY) else None


def architecture_mismatch(
    model: nn.Module, missing: Iterable[str], unexpected: Iterable[str], mismatched: Iterable[Any] = ()
) -> str | None:
    """Why the loaded file cannot be the encoder ``model``'s config describes, or None.

    ``missing``/``unexpected``/``mismatched`` are transformers' loading info (``output_loading_info``).
    """
    extra = sorted(k for k in unexpected if _body(k) is not None)
    body_params = [name for name, _ in model.named_parameters() if _body(name) is not None]
    missing_body = {k for k in missing if _body(k) is not None}
    loaded_any = len(missing_body) < len(body_params)  # the file holds the encoder, or part of it
    absent = sorted(k for k in missing_body if not MAY_BE_NEW.search(k)) if loaded_any else []
    resized = sorted(str(entry[0] if isinstance(entry, tuple) else entry) for entry in mismatched)
    resized = [k for k in resized if _body(k) is not None]
    if not (extra or absent or resized):
        return None
    parts = []
    for what, keys in (
        ("the weights hold encoder tensors the config does not build", extra),
        ("the config builds encoder tensors the weights lack", absent),
        ("encoder tensors have other shapes than the config gives", resized),
    ):
        if keys:
            groups = summarise_keys(keys)
            more = f", ... ({len(keys)} tensors in all)" if len(groups) > MAX_KEYS_NAMED else ""
            parts.append(f"{what}: {', '.join(groups[:MAX_KEYS_NAMED])}{more}")
    return "; ".join(parts)


def summarise_keys(keys: list[str]) -> list[str]:
    """Keys grouped by numbered block, blocks with the same tensors merged:
    ``wav2vec2.feature_extractor.conv_layers.{1, 2, 3}.layer_norm.* (6 tensors)``."""
    blocks: dict[tuple[str, str], list[str]] = {}  # (prefix, index) -> tensor names inside the block
    loose = []
    for key in keys:
        match = _NUMBERED_BLOCK.match(key)
        if match is None:
            loose.append(key)
        else:
            blocks.setdefault((match.group(1), match.group(2)), []).append(match.group(3))
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (prefix, index), names in blocks.items():
        merged.setdefault((prefix, tuple(sorted(names))), []).append(index)
    out = []
    for (prefix, inside), indices in merged.items():
        common = os.path.commonprefix(list(inside))
        common = common[: common.rfind(".") + 1] if len(inside) > 1 else inside[0]
        where = indices[0] if len(indices) == 1 else "{" + ", ".join(indices) + "}"
        tail = f"{common}*" if len(inside) > 1 else common
        count = len(inside) * len(indices)
        out.append(f"{prefix}.{where}.{tail}" + (f" ({count} tensors)" if count > 1 else ""))
    return out + loose


def mismatch_message(source: str, problem: str, config: Any = None) -> str:
    """The error for :func:`architecture_mismatch`, naming the fields to compare (with their values)."""
    names = ("num_hidden_layers", "feat_extract_norm", "do_stable_layer_norm", "hidden_size", "intermediate_size")
    fields = ", ".join(f"{n} ({getattr(config, n)!r})" if config is not None else n for n in names)
    return (
        f"{source}: config.json does not match the weights ({problem}). Compare {fields}, conv_dim and "
        "vocab_size with the model that saved the weights, or use the config.json that came with them "
        "(ignore_mismatched_sizes=True re-initialises a head of another size)."
    )


def init_missing_composites(model: nn.Module, init: Any, missing: Iterable[str]) -> None:
    """Run ``init`` (the model's ``_init_weights``) on blocks whose weights the file lacked and whose
    init lives on the parent block: the positional convolution (weight norm) and the feature projection.

    transformers' loader initialises missing weights module by module but skips modules that own
    no tensor directly when the class is not its own, which leaves these two as uninitialised memory.
    """
    missing = set(missing)
    for name, module in model.named_modules():
        owned = module.projection if isinstance(module, FeatureProjection) else module  # what the init writes
        if isinstance(module, (ConvPositionEncoder, FeatureProjection)):
            prefix = f"{name}." if name else ""
            if owned is not module:
                prefix += "projection."
            if all(f"{prefix}{param}" in missing for param, _ in owned.named_parameters()):
                init(module)
