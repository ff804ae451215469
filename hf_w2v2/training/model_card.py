"""The model card (``README.md`` with Hub metadata) of every job's model: the one renderer.

A card is the package's Markdown template (``card_template.md`` next to this module, read with
``importlib.resources`` so it is found in an installed wheel too; a run may give its own) with ``$name``
placeholders (``string.Template``), filled from one :class:`CardInputs`. What differs between the jobs
(CTC fine-tuning, classification, pre-training) is data each job hands in as a :class:`CardTask`: its Hub
tags, pipeline tag and result task, its metric names, how its evaluation table reads, and its sections
(prose with ``$placeholders``, in order). The YAML front matter (language, license, datasets, metrics,
base_model, tags, model-index with the eval results) is built here, once, with
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
NO_EVALUATION = "No evaluation was run."
NO_INITIALISATION = "none (random initialisation)"
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


@dataclass(frozen=True)
class EvalRow:
    """One evaluated set: a line of the card's evaluation table and, unless scored before training, its
    Hub eval results (one per metric)."""

    split: str  # the set's name as the table shows it
    size: int  # utterances or clips scored
    metrics: Mapping[str, float]  # metric -> value, in the table's column order (e.g. wer, cer)
    dataset: str | None = None  # the corpus the split comes from; None: the split names its data itself
    hours: float | None = None  # audio scored; None: no hours column
    notes: str = ""
    before_training: bool = False  # the starting point: in the table, not in the Hub metadata (not this model's score)


@dataclass(frozen=True)
class CardSection:
    """One part of a card: a ``## heading`` (None: text under the summary, no heading of its own) and its
    Markdown body, whose ``$placeholders`` are filled like the template's."""

    heading: str | None
    body: str


@dataclass(frozen=True)
class CardTask:
    """What every card of one task says: its Hub metadata, its evaluation table's look and its sections."""

    tags: tuple[str, ...]
    sections: tuple[CardSection, ...]
    pipeline_tag: str | None = None  # the Hub's inference pipeline; None where the Hub has none
    result_task: str | None = None  # the model-index task type; None: no eval results in the Hub metadata
    result_task_name: str | None = None  # its display name in the model-index
    hub_metrics: tuple[str, ...] = ()  # the metadata's ``metrics:`` list
    metric_names: Mapping[str, str] = field(default_factory=dict)  # metric -> display name (table, model-index)
    size_label: str = "clips"  # what the table's size column counts
    decimals: int = 4  # of the metric values in the table


@dataclass(frozen=True)
class CardInputs:
    """Everything the card says about one run."""

    model_name: str
    task: CardTask
    summary: str = ""
    language: str = "en"
    license: str = "apache-2.0"
    base_model: str | None = None  # Hub id for the metadata; a local folder is not one
    initialisation: str | None = None  # what the card says the weights started from (default: base_model)
    datasets: Sequence[str] = ()
    evals: Sequence[EvalRow] = ()
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    data_section: str = ""
    intended_use: str = ""
    limitations: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)  # the job's own $placeholders (sections, custom templates)


def card_metadata(inputs: CardInputs) -> ModelCardData:
    """Hub metadata, with a model-index entry per metric of each evaluated set (none before training)."""
    task = inputs.task
    results = [
        EvalResult(
            task_type=task.result_task,
            task_name=task.result_task_name,
            dataset_type=row.dataset or row.split,
            dataset_name=row.dataset or row.split,
            dataset_split=row.split if row.dataset else None,
            metric_type=metric,
            metric_name=task.metric_names.get(metric),
            metric_value=round(value, 4),
        )
        for row in inputs.evals
        if task.result_task and not row.before_training
        for metric, value in row.metrics.items()
    ]
    return ModelCardData(
        language=inputs.language,
        license=inputs.license,
        base_model=inputs.base_model,
        datasets=list(inputs.datasets) or None,
        metrics=list(task.hub_metrics) or None,
        tags=list(task.tags),
        pipeline_tag=task.pipeline_tag,
        library_name="transformers",
        model_name=inputs.model_name,
        eval_results=results or None,
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def eval_table(rows: Sequence[EvalRow], task: CardTask) -> str:
    """One line per evaluated set: [data], split (``set`` without a data column), size, [hours], each metric
    (in the task's decimals), [notes]; a bracketed column only when some row fills it."""
    if not rows:
        return NO_EVALUATION
    with_data = any(r.dataset for r in rows)
    with_hours = any(r.hours is not None for r in rows)
    with_notes = any(r.notes for r in rows)
    metrics = list(dict.fromkeys(k for r in rows for k in r.metrics))  # every row's, first seen first
    header = (["data", "split"] if with_data else ["set"]) + [task.size_label] + (["hours"] if with_hours else [])
    header += [task.metric_names.get(k, k) for k in metrics] + (["notes"] if with_notes else [])
    cells = []
    for r in rows:
        line: list[Any] = ([r.dataset or "", r.split] if with_data else [r.split]) + [r.size]
        if with_hours:
            line.append("" if r.hours is None else f"{r.hours:.2f}")
        line += [f"{r.metrics[k]:.{task.decimals}f}" if k in r.metrics else "" for k in metrics]
        cells.append(line + ([r.notes] if with_notes else []))
    return markdown_table(header, cells)


def hyperparameter_table(values: Mapping[str, Any]) -> str:
    return markdown_table(["hyper-parameter", "value"], [(k, f"`{v}`") for k, v in values.items()])


def default_template() -> str:
    """The card template shipped with the package."""
    return resources.files("hf_w2v2.training").joinpath(TEMPLATE_RESOURCE).read_text(encoding="utf-8")


def render_sections(sections: Sequence[CardSection], values: Mapping[str, str]) -> str:
    """The sections in order, each ``## heading`` and body with its placeholders filled from ``values``."""
    parts = []
    for section in sections:
        try:
            body = string.Template(section.body).substitute(values)
        except KeyError as missing:
            raise ValueError(
                f"model-card section {section.heading!r} uses ${missing.args[0]}, which the job did not hand in "
                "(give it in CardInputs.extra)"
            ) from None
        parts.append(body if section.heading is None else f"## {section.heading}\n\n{body}")
    return "\n\n".join(parts)


def card_values(inputs: CardInputs) -> dict[str, str]:
    """Every ``$placeholder`` a template or a section may use (``$sections`` aside)."""
    return {
        "metadata": card_metadata(inputs).to_yaml(),
        "model_name": inputs.model_name,
        "summary": inputs.summary,
        "eval_table": eval_table(inputs.evals, inputs.task),
        "hyperparameters_table": hyperparameter_table(inputs.hyperparameters),
        "data_section": inputs.data_section,
        "intended_use": inputs.intended_use,
        "limitations": inputs.limitations,
        "base_model": inputs.initialisation or inputs.base_model or NO_INITIALISATION,
        "language": inputs.language,
        "license": inputs.license,
        **inputs.extra,
    }


def render_model_card(inputs: CardInputs, template: str | os.PathLike | None = None) -> str:
    """Fill ``template`` (a Markdown file; default: the package's ``card_template.md``) for ``inputs``.

    The template may use ``$sections`` (the task's sections, rendered) or the single values of
    :func:`card_values` (``$eval_table``, ``$hyperparameters_table``, ``$limitations``, the job's extras...).
    """
    if template is None:
        text = default_template()
    elif Path(template).is_file():
        text = Path(template).read_text(encoding="utf-8")
    else:
        raise ValueError(f"model-card template not found: {template}")
    values = card_values(inputs)
    values["sections"] = render_sections(inputs.task.sections, values)
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
