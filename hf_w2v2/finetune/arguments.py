"""Command-line / config-file arguments of CTC fine-tuning (``HfArgumentParser`` dataclasses).

Four groups: :class:`ModelArguments` (where the encoder comes from, what to change in its
config), :class:`DataArguments` (corpora, filters, vocabulary), :class:`CardArguments`
(model-card metadata) and transformers' own ``TrainingArguments``.

A JSON or YAML file holds a whole recipe; options given after it on the command line win:

    python examples/finetune_ctc.py examples/configs/finetune_small_synth.yaml --max_steps 50
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from hf_w2v2.models.configuration import check_override_names
from hf_w2v2.training.loaders import check_loading, max_batch_seconds_field, shuffle_buffer_field
from hf_w2v2.training.recipe import parse_recipe_args


@dataclass
class ModelArguments:
    """Where the model comes from and what to change in its config before training."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local folder of a pre-trained wav2vec 2.0 model (e.g. facebook/wav2vec2-base); "
            "its CTC head is created (or resized) for the vocabulary. Exclusive with --config_name."
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
    final_dropout: float | None = field(default=None, metadata={"help": "Dropout before the CTC head."})
    ctc_loss_reduction: str | None = field(
        default=None, metadata={"help": "'mean' (per target token, then batch; recommended) or 'sum'."}
    )
    ctc_zero_infinity: bool | None = field(
        default=None, metadata={"help": "Zero infinite CTC losses (labels longer than frames are filtered anyway)."}
    )

    def __post_init__(self) -> None:
        if self.model_name_or_path and self.config_name:
            raise ValueError("give either --model_name_or_path (pre-trained) or --config_name (random init), not both")
        if not self.model_name_or_path and not self.config_name:
            raise ValueError("give --model_name_or_path (pre-trained weights) or --config_name (random init)")
        if isinstance(self.config_overrides, dict):
            self.config_overrides = json.dumps(self.config_overrides)

    def overrides(self) -> dict[str, Any]:
        """Config fields to set: the explicit options, then ``config_overrides``."""
        names = (
            "mask_time_prob",
            "mask_time_length",
            "mask_feature_prob",
            "mask_feature_length",
            "layerdrop",
            "hidden_dropout",
            "attention_dropout",
            "activation_dropout",
            "feat_proj_dropout",
            "final_dropout",
            "ctc_loss_reduction",
            "ctc_zero_infinity",
        )
        values = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.config_overrides:
            extra = json.loads(self.config_overrides)
            if not isinstance(extra, dict):
                raise ValueError(f"config_overrides must be a JSON object, got {self.config_overrides!r}")
            check_override_names(extra)
            values.update(extra)
        return values


def corpus_name(source: str) -> str:
    """What cards and reports call a corpus given by path: its folder or file name."""
    return Path(str(source).rstrip("/")).name


@dataclass
class DataArguments:
    """Corpora, filters and vocabulary."""

    train_data: str | None = field(
        default=None,
        metadata={
            "help": "Training corpus: audiofolder (metadata.csv), LibriSpeech folder, .csv/.tsv/.jsonl "
            "manifest or datasets save_to_disk folder (see hf_w2v2.data.sources)."
        },
    )
    extra_train_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More training corpora (same formats), appended to --train_data, e.g. speech made "
            "with examples/make_synth_corpus.py."
        },
    )
    eval_data: str | None = field(default=None, metadata={"help": "Validation corpus (same formats)."})
    test_data: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra corpora evaluated after training, as NAME=PATH or PATH (name = folder name)."},
    )
    text_column: str = field(default="text", metadata={"help": "Transcript column of manifests."})
    audio_column: str | None = field(default=None, metadata={"help": "Audio column (default: auto-detected)."})
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Use this tokenizer / processor folder instead of building the vocabulary from "
            "the training transcripts (default: the model's own when it has one)."
        },
    )
    vocab_min_count: int = field(default=1, metadata={"help": "Characters seen fewer times become [UNK]."})
    case: str = field(default="upper", metadata={"help": "Transcript case folding: upper, lower or none."})
    min_duration: float = field(default=0.0, metadata={"help": "Drop clips shorter than this (seconds)."})
    max_duration: float | None = field(default=20.0, metadata={"help": "Drop training clips longer than this."})
    drop_oov: bool = field(default=False, metadata={"help": "Drop utterances with out-of-vocabulary characters."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training items."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N eval items."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Audio decoding threads."})
    train_loading: str = field(
        default="eager",
        metadata={
            "help": "How training audio is read. eager: decoded once before training (small sets; fastest steps); "
            "lazy: decoded, resampled and normalised in the DataLoader workers from the files, memory flat in the "
            "corpus size; stream: a datasets IterableDataset over shards/manifests (needs max_steps), split across "
            "ranks and workers and shuffled with --shuffle_buffer."
        },
    )
    max_batch_seconds: float | None = max_batch_seconds_field()
    shuffle_buffer: int = shuffle_buffer_field()
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Wall-clock budget of training (minutes): the learning rate follows its schedule "
            "over this time instead of max_steps, and training stops when it is spent."
        },
    )
    eval_before_training: bool = field(
        default=False,
        metadata={
            "help": "Also evaluate --eval_data and --test_data once before training, to show the gain: WER/CER as "
            "eval_before_wer / test_<name>_before_wer ... in the results, a row per split in the card (kept out of "
            "its Hub metadata), predictions in predictions_<split>_before.tsv."
        },
    )
    skip_nonfinite_loss: bool = field(
        default=True,
        metadata={
            "help": "Skip (and count) training micro-batches whose loss is NaN/inf instead of letting NaN into the "
            "weights; a run where every one is non-finite stops with an error."
        },
    )
    predictions_file: str = field(
        default="predictions_{split}.tsv",
        metadata={"help": "Per-utterance predictions written after training ({split} = eval / test name)."},
    )

    def __post_init__(self) -> None:
        self.test_data = [item for item in self.test_data if item.strip()]  # `--test_data ""` clears the list
        self.extra_train_data = [item for item in self.extra_train_data if item.strip()]
        if self.extra_train_data and not self.train_data:
            raise ValueError("extra_train_data needs train_data (the main training corpus) as well")
        if self.case not in ("upper", "lower", "none"):
            raise ValueError(f"case must be upper, lower or none, got {self.case!r}")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise ValueError(f"max_train_minutes must be positive, got {self.max_train_minutes}")
        check_loading(self.train_loading, self.max_batch_seconds, self.shuffle_buffer)

    def named_test_sets(self) -> list[tuple[str, str]]:
        """``test_data`` as ``(name, path)`` pairs."""
        pairs = []
        for item in self.test_data:
            name, sep, path = item.partition("=")
            pairs.append((name, path) if sep else (corpus_name(item), item))
        return pairs


@dataclass
class CardArguments:
    """Model-card (README.md) metadata; the card's tables come from the run."""

    language: str = field(default="en", metadata={"help": "ISO 639-1 code of the transcripts' language."})
    license: str = field(default="apache-2.0", metadata={"help": "Licence of the released weights."})
    dataset_name: str | None = field(default=None, metadata={"help": "Name of the training data for the card."})
    model_name: str | None = field(default=None, metadata={"help": "Title of the card (default: output folder)."})
    intended_use: str | None = field(default=None, metadata={"help": "Intended-use paragraph (default: generic)."})
    limitations: str | None = field(default=None, metadata={"help": "Limitations paragraph (default: generic)."})
    card_template: str | None = field(
        default=None,
        metadata={"help": "Markdown template (default: hf_w2v2/training/card_template.md, shipped with the package)."},
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, CardArguments, TrainingArguments)


def parse_finetune_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, DataArguments, CardArguments, TrainingArguments]:
    """Parse ``[RECIPE.yaml|json] [--option value ...]``; command-line options override the file."""
    return parse_recipe_args(ARGUMENT_CLASSES, argv)
