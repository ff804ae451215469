"""The model to pre-train: a new one from a preset or config, or a checkpoint to continue from."""

from __future__ import annotations

from hf_w2v2.models.configuration import config_from_name
from hf_w2v2.models.integrity import check_finite_weights
from hf_w2v2.models.pretraining import Wav2Vec2ForPreTraining
from hf_w2v2.pretrain.arguments import ModelArguments


def load_model(args: ModelArguments) -> Wav2Vec2ForPreTraining:
    """A new model from ``config_name`` or the checkpoint ``model_name_or_path``, with the overrides applied."""
    overrides = args.overrides()
    if args.model_name_or_path:
        model = Wav2Vec2ForPreTraining.from_pretrained(args.model_name_or_path, **overrides)
        check_finite_weights(model, args.model_name_or_path)
        return model
    assert args.config_name is not None  # ModelArguments checks that one of the two is given
    return Wav2Vec2ForPreTraining(config_from_name(args.config_name, **overrides))
