"""What every job does to the model it trains: freeze (part of) the feature encoder, count and describe it."""

from __future__ import annotations

import logging

from torch import nn

logger = logging.getLogger(__name__)


def freeze_encoder(
    model: nn.Module, pretrained: bool, freeze_feature_encoder: bool | None, frozen_conv_layers: int | None
) -> None:
    """``--frozen_conv_layers N`` freezes the first N conv blocks; else ``--freeze_feature_encoder``,
    whose default (None) freezes the feature encoder of pre-trained weights only."""
    freeze = pretrained if freeze_feature_encoder is None else freeze_feature_encoder
    if frozen_conv_layers is not None:
        model.freeze_feature_encoder(frozen_conv_layers)  # type: ignore[operator]
        logger.info("feature encoder: the first %d conv blocks are frozen, the rest are trained", frozen_conv_layers)
    elif freeze:
        model.freeze_feature_encoder()  # type: ignore[operator]
    elif not pretrained:
        logger.info("random initialisation: the feature encoder is trained")


def describe_frozen_encoder(model: nn.Module) -> str:
    """The feature encoder's training state in words, for the model card."""
    encoder = model.base_encoder().feature_extractor  # type: ignore[operator]
    frozen, total = encoder.num_frozen_layers, len(encoder.conv_layers)
    if frozen == total:
        return f"all {total} conv blocks frozen"
    return f"first {frozen} of {total} conv blocks frozen" if frozen else "trained"


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all, trainable) parameter counts."""
    # whole parameters: under ZeRO-3 a rank holds empty placeholders that carry their size in ``ds_numel``
    sizes = [(int(getattr(p, "ds_numel", p.numel())), p.requires_grad) for p in model.parameters()]
    total = sum(n for n, _ in sizes)
    trainable = sum(n for n, grad in sizes if grad)
    return total, trainable


def log_parameters(model: nn.Module) -> None:
    total, trainable = count_parameters(model)
    logger.info("model: %.2f M parameters, %.2f M trainable", total / 1e6, trainable / 1e6)
