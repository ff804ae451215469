"""Build the CTC model to fine-tune: pre-trained weights or a config, a head sized to the vocabulary.

Shape legend: D model dim, V vocabulary.

A pre-trained encoder (``facebook/wav2vec2-base``, a folder written by the pre-training
recipe) has no CTC head yet: ``lm_head`` (D -> V) is created here for the vocabulary. A
CTC model whose head has another size gets a fresh head of the right size (logged).
"""

from __future__ import annotations

import logging
from typing import Any

from hf_w2v2.models.configuration import Wav2Vec2Config, config_from_name
from hf_w2v2.models.ctc import Wav2Vec2ForCTC

logger = logging.getLogger(__name__)


def _head_size_of(name_or_path: str) -> int | None:
    """``vocab_size`` of a saved config, if it can be read without loading weights."""
    try:
        return Wav2Vec2Config.from_pretrained(name_or_path).vocab_size
    except (OSError, ValueError):
        return None


def build_ctc_model(
    vocab_size: int,
    pad_token_id: int,
    model_name_or_path: str | None = None,
    config_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    freeze_feature_encoder: bool | None = None,
    frozen_conv_layers: int | None = None,
) -> Wav2Vec2ForCTC:
    """A ``Wav2Vec2ForCTC`` with a V-way head (blank = ``pad_token_id``).

    Args:
        vocab_size: V, ``len(tokenizer)``.
        pad_token_id: the tokenizer's pad id, used as the CTC blank.
        model_name_or_path: Hub id or folder of pre-trained weights (any wav2vec 2.0 head).
        config_name: preset or config file for random initialisation (exclusive with the above).
        overrides: config fields to set (masking, dropouts, ``ctc_zero_infinity``, ...).
        freeze_feature_encoder: ``None`` freezes it for pre-trained weights only.
        frozen_conv_layers: freeze only the first N conv blocks (implies freezing).
    """
    # An empty string clears a recipe's value from the command line (--config_name "").
    model_name_or_path, config_name = model_name_or_path or None, config_name or None
    if (model_name_or_path is None) == (config_name is None):
        raise ValueError("pass exactly one of model_name_or_path (pre-trained) and config_name (random init)")
    fields = dict(overrides or {})
    fields.update(vocab_size=vocab_size, pad_token_id=pad_token_id)
    if config_name is not None:
        model = Wav2Vec2ForCTC(config_from_name(config_name, **fields))
        pretrained = False
    else:
        assert model_name_or_path is not None  # exactly one of the two is given
        old = _head_size_of(model_name_or_path)
        resize = old is not None and old != vocab_size
        if resize:
            logger.warning("%s has a %s-way head; creating a new %d-way lm_head", model_name_or_path, old, vocab_size)
        model = Wav2Vec2ForCTC.from_pretrained(model_name_or_path, ignore_mismatched_sizes=resize, **fields)
        pretrained = True
    model.config.check()
    freeze = pretrained if freeze_feature_encoder is None else freeze_feature_encoder
    if frozen_conv_layers is not None:
        model.freeze_feature_encoder(frozen_conv_layers)
        logger.info("feature encoder: the first %d conv blocks are frozen, the rest are trained", frozen_conv_layers)
    elif freeze:
        model.freeze_feature_encoder()
    elif not pretrained:
        logger.info("random initialisation: the feature encoder is trained")
    return model


def describe_frozen_encoder(model: Wav2Vec2ForCTC) -> str:
    """The feature encoder's training state in words, for the model card."""
    encoder = model.base_encoder().feature_extractor
    frozen, total = encoder.num_frozen_layers, len(encoder.conv_layers)
    if frozen == total:
        return f"all {total} conv blocks frozen"
    return f"first {frozen} of {total} conv blocks frozen" if frozen else "trained"


def count_parameters(model: Wav2Vec2ForCTC) -> tuple[int, int]:
    """(all, trainable) parameter counts (whole parameters: ZeRO-3 holds empty placeholders and their ``ds_numel``)."""
    sizes = [(int(getattr(p, "ds_numel", p.numel())), p.requires_grad) for p in model.parameters()]
    total = sum(n for n, _ in sizes)
    trainable = sum(n for n, grad in sizes if grad)
    return total, trainable
