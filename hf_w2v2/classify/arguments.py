"""Command-line / config-file arguments of classification fine-tuning (``HfArgumentParser`` dataclasses).

The model and card groups are the ones every job shares (:class:`~hf_w2v2.training.arguments.ModelArguments`,
:class:`~hf_w2v2.training.arguments.CardArguments`); :class:`ClassifyDataArguments` says which
task, which corpora and which label column. A YAML/JSON recipe may hold them all:

    python examples/finetune_classification.py examples/configs/classify_fsdd_digits.yaml --max_train_minutes 5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import TrainingArguments

from hf_w2v2.training.arguments import (
    CardArguments,
    ModelArguments,
    check_max_train_minutes,
    max_train_minutes_field,
    named_sets,
)
from hf_w2v2.training.recipe import parse_recipe_args

TASKS = ("sequence", "xvector", "frame")
BALANCE = ("none", "sampler", "weights")


@dataclass
class ClassifyDataArguments:
    """Task, corpora, label column and how classes are balanced."""

    task: str = field(
        default="sequence",
        metadata={
            "help": "sequence: one label per clip (keyword spotting, speaker id; Wav2Vec2ForSequenceClassification); "
            "xvector: speaker embeddings trained on speaker labels, evaluated by verification EER "
            "(Wav2Vec2ForXVector); frame: one label per 20 ms frame (Wav2Vec2ForAudioFrameClassification)."
        },
    )
    train_data: str | None = field(
        default=None,
        metadata={"help": "Training corpus: audiofolder, .csv/.tsv/.jsonl manifest or datasets folder."},
    )
    eval_data: str | None = field(default=None, metadata={"help": "Validation corpus (same formats)."})
    test_data: list[str] = field(
        default_factory=list,
        metadata={"help": "Extra corpora evaluated after training, as NAME=PATH or PATH (name = file/folder name)."},
    )
    label_column: str = field(
        default="label",
        metadata={
            "help": "Column holding each clip's class (digit, speaker, ...). For --task frame: the speech "
            "segments of the clip in seconds, 'START-END;START-END' (empty: no speech)."
        },
    )
    audio_column: str | None = field(default=None, metadata={"help": "Audio column (default: auto-detected)."})
    max_seconds: float | None = field(
        default=None, metadata={"help": "Keep only the middle N seconds of longer clips (memory and time)."}
    )
    balance: str = field(
        default="none",
        metadata={
            "help": "Class imbalance: none; sampler (draw training clips with probability 1 / class count); "
            "weights (cross-entropy weighted by N / (L x class count); --task sequence only)."
        },
    )
    bucket_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Batch clips by length buckets of this many seconds and pad to the bucket's bound (not with "
            "balance=sampler, nor with --cache_frozen_features)."
        },
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training clips."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N clips of eval sets."})
    trials_per_kind: int = field(
        default=5000,
        metadata={"help": "--task xvector: target and non-target trials drawn from each evaluated set (at most)."},
    )
    p_target: float = field(default=0.01, metadata={"help": "--task xvector: prior of the minDCF."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Audio decoding threads."})
    max_train_minutes: float | None = max_train_minutes_field()

    def __post_init__(self) -> None:
        self.test_data = [item for item in self.test_data if item.strip()]
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {list(BALANCE)}, got {self.balance!r}")
        if self.balance == "weights" and self.task != "sequence":
            raise ValueError("balance=weights is for --task sequence; use balance=sampler")
        check_max_train_minutes(self.max_train_minutes)
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")

    def named_eval_sets(self) -> list[tuple[str, str]]:
        """``[("eval", eval_data)]`` then the ``test_data`` sets as ``(name, path)``."""
        return ([("eval", self.eval_data)] if self.eval_data else []) + named_sets(self.test_data)


ARGUMENT_CLASSES = (ModelArguments, ClassifyDataArguments, CardArguments, TrainingArguments)


def parse_classify_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, ClassifyDataArguments, CardArguments, TrainingArguments]:
    """Parse ``[RECIPE.yaml|json] [--option value ...]``; command-line options override the file."""
    return parse_recipe_args(ARGUMENT_CLASSES, argv)
