"""Build the model to train: an utterance-, x-vector- or frame-classification head on a wav2vec 2.0 encoder.

Shape legend: D model dim, L labels.

The encoder comes from any saved wav2vec 2.0 model (pre-trained, or a CTC model whose
``lm_head`` is dropped) or a config (random initialisation); the head is created for the
label set, whose names are stored in ``config.id2label`` so ``pipeline("audio-classification")``
and ``hf-w2v2 classify`` print them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForSequenceClassification
from hf_w2v2.models.configuration import Wav2Vec2Config, config_from_name
from hf_w2v2.models.integrity import check_finite_weights
from hf_w2v2.models.modeling import Wav2Vec2PreTrainedModel
from hf_w2v2.models.xvector import Wav2Vec2ForXVector
from hf_w2v2.training.model_setup import freeze_encoder

logger = logging.getLogger(__name__)

HEADS: dict[str, type[Wav2Vec2PreTrainedModel]] = {
    "sequence": Wav2Vec2ForSequenceClassification,
    "xvector": Wav2Vec2ForXVector,
    "frame": Wav2Vec2ForAudioFrameClassification,
}
"""``--task`` -> head class: one label per clip, a speaker embedding (x-vector), one label per frame."""


def head_class(task: str) -> type[Wav2Vec2PreTrainedModel]:
    if task not in HEADS:
        raise ValueError(f"task must be one of {sorted(HEADS)}, got {task!r}")
    return HEADS[task]


def build_classifier(
    task: str,
    names: Sequence[str],
    model_name_or_path: str | None = None,
    config_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    freeze_feature_encoder: bool | None = None,
    frozen_conv_layers: int | None = None,
) -> Wav2Vec2PreTrainedModel:
    """A ``task`` head with ``len(names)`` classes named ``names`` on a pre-trained or random encoder.

    A head of another size or kind in the saved weights is replaced by a new one (logged);
    ``freeze_feature_encoder=None`` freezes the conv feature encoder for pre-trained weights only.
    """
    model_name_or_path, config_name = model_name_or_path or None, config_name or None
    if (model_name_or_path is None) == (config_name is None):
        raise ValueError("pass exactly one of model_name_or_path (pre-trained) and config_name (random init)")
    cls = head_class(task)
    fields = dict(overrides or {})
    fields.update(
        num_labels=len(names),
        id2label={i: str(n) for i, n in enumerate(names)},
        label2id={str(n): i for i, n in enumerate(names)},
    )
    if config_name is not None:
        model = cls(config_from_name(config_name, **fields))
        pretrained = False
    else:
        assert model_name_or_path is not None  # one of the two is set (checked above)
        saved = Wav2Vec2Config.from_pretrained(model_name_or_path)
        same = saved.architectures == [cls.__name__] and saved.num_labels == len(names)
        if not same:
            logger.info("%s: new %d-way %s head (%s)", model_name_or_path, len(names), task, saved.architectures)
        saved.update(fields)  # the overrides too (xvector_loss, ...)
        model = cls.from_pretrained(model_name_or_path, config=saved, ignore_mismatched_sizes=not same)
        check_finite_weights(model, model_name_or_path)
        pretrained = True
    freeze_encoder(model, pretrained, freeze_feature_encoder, frozen_conv_layers)
    return model
