"""The model card (``README.md`` with Hub metadata) written next to a fine-tuned model.

The text comes from a Markdown template shipped inside the package (``card_template.md`` next to
this module, read with ``importlib.resources`` so it is found in an installed wheel too) with ``$name``
placeholders (``string.Template``); a run may give its own. The YAML front matter (language, license, datasets,
metrics, base_model, tags, model-index with the eval results) is built with
``huggingface_hub.ModelCardData`` so the Hub parses it.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

TEMPLATE_RESOURCE = "card_template.md"  # package data of hf_w2v2.training (pyproject: training/*.md)
DEFAULT_TAGS = ("automatic-speech-recognition", "wav2vec2", "ctc", "hf_w2v2")
DEFAULT_INTENDED_USE = (
    "Transcribing short recordings of the kind it was trained on (language, speaking style, "
    "recording conditions), and as a starting point for further fine-tuning."
)
DEFAULT_LIMITATIONS = (
    "Trained on a small corpus: expect much higher error rates on speech unlike the training data "
    "(other accents, spontaneous speech, noise, far-field microphones). Greedy CTC decoding without a "
    "language model; characters outside the vocabulary can never be produced."
)
HYPERPARAMETERS = (
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "num_train_epochs",
    "warmup_steps",
    "lr_scheduler_type",
    "weight_decay",
    "optim",
    "seed",
    "bf16",
    "fp16",
    "gradient_checkpointing",
    "train_sampling_strategy",
)


@dataclass
class EvalRow:
    """One line of the card's evaluation table."""

    dataset: str
    split: str
    wer: float
    cer: float
    utterances: int
    hours: float
    before_training: bool = False  # the starting point: in the table, not in the Hub metadata (not this model's score)


@dataclass
class CardInputs:
    """Everything the card says about one run."""

    model_name: str
    language: str = "en"
    license: str = "apache-2.0"
    base_model: str | None = None  # Hub id for the metadata; a local folder is not one
    initialisation: str | None = None  # what the card says the weights started from (default: base_model)
    datasets: list[str] = field(default_factory=list)
    evals: list[EvalRow] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    data_section: str = ""
    summary: str = ""
    intended_use: str = DEFAULT_INTENDED_USE
    limitations: str = DEFAULT_LIMITATIONS
    tags: Sequence[str] = DEFAULT_TAGS
    sampling_rate: int = 16_000  # Hz, the model's (its feature extractor's): "How to use" resamples to it
    extra: dict[str, str] = field(default_factory=dict)  # more $placeholders for custom templates


def card_metadata(inputs: CardInputs) -> ModelCardData:
    """Hub metadata, with a model-index entry per evaluated split (WER and CER)."""
    results = []
    for row in (row for row in inputs.evals if not row.before_training):
        for metric, value in (("wer", row.wer), ("cer", row.cer)):
            results.append(
                EvalResult(
                    task_type="automatic-speech-recognition",
                    task_name="Speech Recognition",
                    dataset_type=row.dataset,
                    dataset_name=row.dataset,
                    dataset_split=row.split,
                    metric_type=metric,
                    metric_name=metric.upper(),
                    metric_value=round(value, 4),
                )
            )
    return ModelCardData(
        language=inputs.language,
        license=inputs.license,
        base_model=inputs.base_model,
        datasets=inputs.datasets or None,
        metrics=["wer", "cer"],
        tags=list(inputs.tags),
        pipeline_tag="automatic-speech-recognition",
        library_name="transformers",
        model_name=inputs.model_name,
        eval_results=results or None,
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def eval_table(rows: Sequence[EvalRow]) -> str:
    if not rows:
        return "No evaluation was run."
    return markdown_table(
        ["data", "split", "utterances", "hours", "WER", "CER"],
        [(r.dataset, r.split, r.utterances, f"{r.hours:.2f}", f"{r.wer:.3f}", f"{r.cer:.3f}") for r in rows],
    )


def hyperparameter_table(values: Mapping[str, Any]) -> str:
    return markdown_table(["hyper-parameter", "value"], [(k, f"`{v}`") for k, v in values.items()])


def default_template() -> str:
    """The card template shipped with the package."""
    return resources.files("hf_w2v2.training").joinpath(TEMPLATE_RESOURCE).read_text(encoding="utf-8")


def render_model_card(inputs: CardInputs, template: str | os.PathLike | None = None) -> str:
    """Fill ``template`` (a Markdown file; default: the package's ``card_template.md``) for ``inputs``."""
    if template is None:
        text = default_template()
    elif Path(template).is_file():
        text = Path(template).read_text(encoding="utf-8")
    else:
        raise ValueError(f"model-card template not found: {template}")
    values = {
        "metadata": card_metadata(inputs).to_yaml(),
        "model_name": inputs.model_name,
        "summary": inputs.summary,
        "eval_table": eval_table(inputs.evals),
        "hyperparameters_table": hyperparameter_table(inputs.hyperparameters),
        "data_section": inputs.data_section,
        "intended_use": inputs.intended_use,
        "limitations": inputs.limitations,
        "base_model": inputs.initialisation or inputs.base_model or "none (random initialisation)",
        "language": inputs.language,
        "license": inputs.license,
        "sampling_rate": str(inputs.sampling_rate),
        **inputs.extra,
    }
    return string.Template(text).safe_substitute(values)


def write_model_card(folder: str | os.PathLike, inputs: CardInputs, template: str | os.PathLike | None = None) -> str:
    """Render the card into ``folder/README.md`` and return its path."""
    path = Path(folder) / "README.md"
    path.write_text(render_model_card(inputs, template), encoding="utf-8")
    return os.fspath(path)


def training_hyperparameters(
    args: Any, extra: Mapping[str, Any] | None = None, epochs_run: float | None = None
) -> dict[str, Any]:
    """The card's hyper-parameter table from ``TrainingArguments`` (plus ``extra``).

    ``num_train_epochs`` is the epochs the run went through (``epochs_run``, the trainer state's
    ``epoch``) when given: with ``max_steps`` set the Trainer ignores the argument (default 3.0), and an
    800-step run of 21 epochs would say 3. Without ``epochs_run`` such an ignored value is left out.
    """
    values = {}
    for name in HYPERPARAMETERS:
        value = getattr(args, name, None)
        values[name] = getattr(value, "value", value)
    if epochs_run is not None:
        values["num_train_epochs"] = round(epochs_run, 2)
    elif (getattr(args, "max_steps", None) or -1) > 0:
        del values["num_train_epochs"]
    schedule_kwargs = getattr(args, "lr_scheduler_kwargs", None)
    if schedule_kwargs:  # e.g. the decay fraction of warmup_stable_decay
        values["lr_scheduler_kwargs"] = json.dumps(schedule_kwargs, sort_keys=True)
    values.update(extra or {})
    return values
