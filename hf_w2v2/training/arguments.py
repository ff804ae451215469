"""The argument groups every job shares (``HfArgumentParser`` dataclasses).

:class:`ModelArguments` (where the encoder comes from and what to change in its config),
:class:`CardArguments` (model-card metadata), and the budget / batching options as field
factories (``--max_train_minutes``, ``--max_batch_seconds``, ``--shuffle_buffer``, the last two in
:mod:`hf_w2v2.training.loaders`). A job adds only its own options: CTC fine-tuning subclasses
:class:`ModelArguments` for its head's fields (:class:`hf_w2v2.finetune.arguments.CTCModelArguments`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hf_w2v2.models.configuration import Wav2Vec2Config, check_override_names, config_from_name


@dataclass
class ModelArguments:
    """Where the model comes from and what to change in its config before training."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local folder of a pre-trained wav2vec 2.0 model (e.g. facebook/wav2vec2-base); "
            "the job's head is created (or resized) on it. Exclusive with --config_name."
        },
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": "Random initialisation from a config: a preset of hf_w2v2.models.configuration (tiny, base, "
            "large_lv60) or a config.json file / folder. For offline runs and from-scratch baselines."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "JSON object of config fields to set, e.g. '{\"hidden_size\": 256}' (applied after the "
            "options below are read; a YAML/JSON config file may give a mapping)."
        },
    )
    freeze_feature_encoder: bool | None = field(
        default=None,
        metadata={
            "help": "Freeze the convolutional feature encoder. Default: frozen when the weights are "
            "pre-trained, trained when the model is initialised at random."
        },
    )
    frozen_conv_layers: int | None = field(
        default=None,
        metadata={
            "help": "Freeze only the first N conv blocks of the feature encoder (the high-rate ones that "
            "cost most of its backward pass) and train the rest. Overrides --freeze_feature_encoder."
        },
    )
    cache_frozen_features: bool = field(
        default=False,
        metadata={
            "help": "Run the frozen conv blocks once per utterance before training and keep their output "
            "in memory (train and eval sets) instead of recomputing it every step: same numbers, less "
            "time per step. Memory: C x frames of the last frozen block per utterance (128 channels at "
            "800 frames/s in bf16 = 205 KB per audio second; all 7 blocks: 50 frames/s)."
        },
    )
    mask_time_prob: float | None = field(default=None, metadata={"help": "SpecAugment time-masking rate."})
    mask_time_length: int | None = field(default=None, metadata={"help": "Time-mask span length (frames)."})
    mask_feature_prob: float | None = field(default=None, metadata={"help": "SpecAugment channel-masking rate."})
    mask_feature_length: int | None = field(default=None, metadata={"help": "Channel-mask span length."})
    layerdrop: float | None = field(default=None, metadata={"help": "Probability of skipping a Transformer block."})
    hidden_dropout: float | None = field(default=None, metadata={"help": "Dropout on residual branches."})
    attention_dropout: float | None = field(default=None, metadata={"help": "Dropout on attention probabilities."})
    activation_dropout: float | None = field(default=None, metadata={"help": "Dropout inside the feed-forward."})
    feat_proj_dropout: float | None = field(default=None, metadata={"help": "Dropout after the feature projection."})

    OVERRIDE_FIELDS: ClassVar[tuple[str, ...]] = (
        "mask_time_prob",
        "mask_time_length",
        "mask_feature_prob",
        "mask_feature_length",
        "layerdrop",
        "hidden_dropout",
        "attention_dropout",
        "activation_dropout",
        "feat_proj_dropout",
    )
    """Options that are config fields; a job's subclass appends its head's."""

    def __post_init__(self) -> None:
        if self.model_name_or_path and self.config_name:
            raise ValueError("give either --model_name_or_path (pre-trained) or --config_name (random init), not both")
        if not self.model_name_or_path and not self.config_name:
            raise ValueError("give --model_name_or_path (pre-trained weights) or --config_name (random init)")
        if isinstance(self.config_overrides, dict):
            self.config_overrides = json.dumps(self.config_overrides)

    def overrides(self) -> dict[str, Any]:
        """Config fields to set: the explicit options, then ``config_overrides``."""
        values = {name: getattr(self, name) for name in self.OVERRIDE_FIELDS if getattr(self, name) is not None}
        if self.config_overrides:
            extra = json.loads(self.config_overrides)
            if not isinstance(extra, dict):
                raise ValueError(f"config_overrides must be a JSON object, got {self.config_overrides!r}")
            check_override_names(extra)
            values.update(extra)
        return values

    def initialisation(self) -> str:
        """Where the weights start, in words, for cards and summaries."""
        return self.model_name_or_path or f"random initialisation ({self.config_name} config)"


def base_config(model_args: ModelArguments) -> Wav2Vec2Config:
    """The model's config before the head is sized (the processor's attention-mask policy, the label names)."""
    if model_args.config_name:
        return config_from_name(model_args.config_name, **model_args.overrides())
    return Wav2Vec2Config.from_pretrained(str(model_args.model_name_or_path))


@dataclass
class CardArguments:
    """Model-card (README.md) metadata; the card's tables come from the run."""

    language: str = field(default="en", metadata={"help": "ISO 639-1 code of the data's language."})
    license: str = field(default="apache-2.0", metadata={"help": "Licence of the released weights."})
    dataset_name: str | None = field(default=None, metadata={"help": "Name of the training data for the card."})
    model_name: str | None = field(default=None, metadata={"help": "Title of the card (default: output folder)."})
    intended_use: str | None = field(default=None, metadata={"help": "Intended-use paragraph (default: generic)."})
    limitations: str | None = field(default=None, metadata={"help": "Limitations paragraph (default: generic)."})
    card_template: str | None = field(
        default=None,
        metadata={
            "help": "Markdown template of the card, for every job (default: hf_w2v2/training/card_template.md, "
            "shipped with the package). It may use $metadata, $model_name, $summary, $sections (the job's sections) "
            "or single parts such as $eval_table, $hyperparameters_table, $data_section, $limitations."
        },
    )


def corpus_name(source: str) -> str:
    """What cards and reports call a corpus given by path: its folder or file name."""
    return Path(str(source).rstrip("/")).name


def named_sets(items: list[str]) -> list[tuple[str, str]]:
    """``--test_data`` items (``NAME=PATH`` or ``PATH``, named after the file/folder) as ``(name, path)``."""
    pairs = []
    for item in items:
        name, sep, path = item.partition("=")
        pairs.append((name, path) if sep else (corpus_name(item), item))
    return pairs


def max_train_minutes_field(help_text: str | None = None) -> Any:
    """The ``--max_train_minutes`` option of every job (checked by :func:`check_max_train_minutes`)."""
    default_help = (
        "Wall-clock budget of training (minutes): the learning rate follows its schedule over this time "
        "(hf_w2v2.training.budget) instead of max_steps, and training stops, with a checkpoint, when it is spent."
    )
    return field(default=None, metadata={"help": help_text or default_help})


def check_max_train_minutes(value: float | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"max_train_minutes must be positive, got {value}")
