"""Command-line / config-file arguments of classification fine-tuning (``HfArgumentParser`` dataclasses).

The model and card groups are fine-tuning's own (:class:`~hf_w2v2.finetune.arguments.ModelArguments`,
:class:`~hf_w2v2.finetune.arguments.CardArguments`); :class:`ClassifyDataArguments` says which
task, which corpora and which label column. A YAML/JSON recipe may hold them all:

    python examples/finetune_classification.py examples/configs/classify_fsdd_digits.yaml --max_train_minutes 5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import TrainingArguments

from hf_w2v2.finetune.arguments import CardArguments, ModelArguments, corpus_name
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
            "balance=sampler). With --cache_frozen_features (default bucket 0.25 s) every clip keeps its padded "
            "width, so the frozen feature encoder runs once per clip."
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
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "Wall-clock training budget (minutes) that drives the learning-rate schedule."},
    )

    def __post_init__(self) -> None:
        self.test_data = [item for item in self.test_data if item.strip()]
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {list(BALANCE)}, got {self.balance!r}")
        if self.balance == "weights" and self.task != "sequence":
            raise ValueError("balance=weights is for --task sequence; use balance=sampler")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise ValueError(f"max_train_minutes must be positive, got {self.max_train_minutes}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {self.max_seconds}")

    def named_eval_sets(self) -> list[tuple[str, str]]:
        """``[("eval", eval_data)]`` then the ``test_data`` sets as ``(name, path)``."""
        pairs = [("eval", self.eval_data)] if self.eval_data else []
        for item in self.test_data:
            name, sep, path = item.partition("=")
            pairs.append((name, path) if sep else (corpus_name(item), item))
        return pairs


ARGUMENT_CLASSES = (ModelArguments, ClassifyDataArguments, CardArguments, TrainingArguments)


def parse_classify_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, ClassifyDataArguments, CardArguments, TrainingArguments]:
    """Parse ``[RECIPE.yaml|json] [--option value ...]``; command-line options override the file."""
    return parse_recipe_args(ARGUMENT_CLASSES, argv)
