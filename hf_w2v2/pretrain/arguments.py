"""Command-line / recipe arguments of self-supervised pre-training (``HfArgumentParser`` dataclasses).

Four groups, the mirror of :mod:`hf_w2v2.finetune.arguments`: :class:`ModelArguments` (a preset
or config for a new model, or a checkpoint to continue from), :class:`ScheduleArguments` (Gumbel
temperature, time budget, resume), :class:`DataArguments` (unlabeled audio, crops) and
transformers' own ``TrainingArguments``. A recipe file (:mod:`hf_w2v2.training.recipe`) sets any
of them; the command line overrides it:

    python examples/pretrain.py examples/configs/pretrain_small.json --max_steps 100 --output_dir runs/x
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from hf_w2v2.models.configuration import check_override_names
from hf_w2v2.pretrain.temperature import PAPER_DECAY, PAPER_END, PAPER_START
from hf_w2v2.training.arguments import CardArguments, check_max_train_minutes, max_train_minutes_field
from hf_w2v2.training.loaders import check_loading, max_batch_seconds_field, shuffle_buffer_field
from hf_w2v2.training.recipe import parse_recipe_args


@dataclass
class ModelArguments:
    """A new model (``config_name``) or a checkpoint to continue pre-training (``model_name_or_path``)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "aliases": ["--init_from"],
            "help": "Continue pre-training from this checkpoint folder (weights and config; the optimizer "
            "starts afresh). To resume an interrupted run instead, use --resume_from_checkpoint.",
        },
    )
    config_name: str | None = field(
        default=None,
        metadata={"help": "Random init from a preset (tiny, small, base, large_lv60) or a config.json path."},
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "JSON object of config fields to change, e.g. '{\"num_negatives\": 50}'."}
    )

    def __post_init__(self) -> None:
        self.model_name_or_path = self.model_name_or_path or None  # "" clears a recipe's value
        self.config_name = self.config_name or None
        if self.model_name_or_path and self.config_name:
            raise ValueError("give either --init_from/--model_name_or_path (continue) or --config_name (new), not both")
        if not self.model_name_or_path and not self.config_name:
            raise ValueError("give --config_name (random init) or --init_from CHECKPOINT (continue pre-training)")
        if isinstance(self.config_overrides, dict):
            self.config_overrides = json.dumps(self.config_overrides)

    def overrides(self) -> dict[str, Any]:
        """Config fields to set from ``config_overrides``."""
        if not self.config_overrides:
            return {}
        values = json.loads(self.config_overrides)
        if not isinstance(values, dict):
            raise ValueError(f"config_overrides must be a JSON object, got {self.config_overrides!r}")
        check_override_names(values)
        return values


@dataclass
class ScheduleArguments:
    """Gumbel temperature, wall-clock budget and resuming."""

    gumbel_start: float = field(default=PAPER_START, metadata={"help": "Gumbel temperature at step 0 (paper: 2)."})
    gumbel_end: float = field(default=PAPER_END, metadata={"help": "Floor of the Gumbel temperature (paper: 0.5)."})
    gumbel_decay: float = field(
        default=PAPER_DECAY, metadata={"help": "Per-optimizer-step decay of the temperature (paper: 0.999995)."}
    )
    max_train_minutes: float | None = max_train_minutes_field()
    auto_resume: bool = field(
        default=True, metadata={"help": "Resume from the newest checkpoint in output_dir when there is one."}
    )

    def __post_init__(self) -> None:
        check_max_train_minutes(self.max_train_minutes)


@dataclass
class DataArguments:
    """Unlabeled audio and how clips are cut."""

    train_source: str | None = field(
        default=None, metadata={"help": "Folder (searched recursively) or manifest (.tsv/.csv/.jsonl/.txt) of audio."}
    )
    extra_train_sources: list[str] = field(
        default_factory=list, metadata={"help": "More training audio (folders or manifests), added to train_source."}
    )
    eval_source: str | None = field(default=None, metadata={"help": "Held-out audio, same formats."})
    max_seconds: float = field(default=15.6, metadata={"help": "Random crop length (fairseq: 250k samples)."})
    min_seconds: float = field(default=2.0, metadata={"help": "Skip shorter files (fairseq: 32k samples)."})
    normalize: bool = field(default=True, metadata={"help": "Per-utterance zero mean, unit variance."})
    max_train_files: int | None = field(default=None, metadata={"help": "Use only the first N files (debug)."})
    train_loading: str = field(
        default="lazy",
        metadata={
            "help": "lazy: files decoded and cropped in the DataLoader workers (memory flat in the corpus size); "
            "stream: a datasets IterableDataset over shards/manifests (needs max_steps), split across ranks and "
            "workers and shuffled with --shuffle_buffer. (eager is accepted and means lazy: audio is never held.)"
        },
    )
    max_batch_seconds: float | None = max_batch_seconds_field()
    shuffle_buffer: int = shuffle_buffer_field()

    def __post_init__(self) -> None:
        self.extra_train_sources = [item for item in self.extra_train_sources if item.strip()]
        check_loading(self.train_loading, self.max_batch_seconds, self.shuffle_buffer)

    @property
    def train_sources(self) -> list[str]:
        """``train_source`` then ``extra_train_sources``."""
        if not self.train_source:
            raise ValueError("--train_source is required (a folder or a manifest of audio files)")
        return [self.train_source, *self.extra_train_sources]


ARGUMENT_CLASSES = (ModelArguments, ScheduleArguments, DataArguments, TrainingArguments, CardArguments)


def parse_pretrain_args(
    argv: Sequence[str] | None = None,
) -> tuple[ModelArguments, ScheduleArguments, DataArguments, TrainingArguments, CardArguments]:
    """Parse ``[RECIPE.json|yaml] [--option value ...]``; command-line options override the file."""
    return parse_recipe_args(ARGUMENT_CLASSES, argv)
