"""Command-line / config-file arguments of CTC fine-tuning (``HfArgumentParser`` dataclasses).

Four groups: :class:`CTCModelArguments` (the shared model options of
:mod:`hf_w2v2.training.arguments` plus the CTC head's), :class:`DataArguments` (corpora, filters,
vocabulary), the shared :class:`~hf_w2v2.training.arguments.CardArguments` and transformers' own
``TrainingArguments``.

A JSON or YAML file holds a whole recipe; options given after it on the command line win:

    python examples/finetune_ctc.py examples/configs/finetune_small_synth.yaml --max_steps 50
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from transformers import TrainingArguments

from hf_w2v2.training.arguments import (
    CardArguments,
    ModelArguments,
    check_max_train_minutes,
    max_train_minutes_field,
    named_sets,
)
from hf_w2v2.training.loaders import check_loading, max_batch_seconds_field, shuffle_buffer_field
from hf_w2v2.training.recipe import parse_recipe_args


@dataclass
class CTCModelArguments(ModelArguments):
    """The shared model options (:class:`hf_w2v2.training.arguments.ModelArguments`) plus the CTC head's."""

    final_dropout: float | None = field(default=None, metadata={"help": "Dropout before the CTC head."})
    ctc_loss_reduction: str | None = field(
        default=None, metadata={"help": "'mean' (per target token, then batch; recommended) or 'sum'."}
    )
    ctc_zero_infinity: bool | None = field(
        default=None, metadata={"help": "Zero infinite CTC losses (labels longer than frames are filtered anyway)."}
    )

    OVERRIDE_FIELDS: ClassVar[tuple[str, ...]] = (
        *ModelArguments.OVERRIDE_FIELDS,
        "final_dropout",
        "ctc_loss_reduction",
        "ctc_zero_infinity",
    )


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
    max_train_minutes: float | None = max_train_minutes_field()
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
        check_max_train_minutes(self.max_train_minutes)
        check_loading(self.train_loading, self.max_batch_seconds, self.shuffle_buffer)

    def named_test_sets(self) -> list[tuple[str, str]]:
        """``test_data`` as ``(name, path)`` pairs."""
        return named_sets(self.test_data)


ARGUMENT_CLASSES = (CTCModelArguments, DataArguments, CardArguments, TrainingArguments)


def parse_finetune_args(
    argv: Sequence[str] | None = None,
) -> tuple[CTCModelArguments, DataArguments, CardArguments, TrainingArguments]:
    """Parse ``[RECIPE.yaml|json] [--option value ...]``; command-line options override the file."""
    return parse_recipe_args(ARGUMENT_CLASSES, argv)
