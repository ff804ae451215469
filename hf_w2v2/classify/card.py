"""The model card of a classifier or speaker-embedding model (``README.md`` with Hub metadata).

Same machinery as CTC cards (:mod:`hf_w2v2.training.model_card`: tables, hyper-parameters,
``huggingface_hub.ModelCardData``) with the task's own metadata: ``audio-classification``
pipeline tag and accuracy / macro-F1 / EER / frame-F1 results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from hf_w2v2.training.model_card import hyperparameter_table, markdown_table

TASK_TAGS = {
    "sequence": ("audio-classification", "wav2vec2", "hf_w2v2"),
    "xvector": ("speaker-verification", "x-vector", "wav2vec2", "hf_w2v2"),
    "frame": ("voice-activity-detection", "audio-frame-classification", "wav2vec2", "hf_w2v2"),
}
CARD = """---
{metadata}
---

# {name}

{summary}

## Evaluation

{results}

## Try it

{usage}

## Training data

{data}

## Training hyper-parameters

{hyperparameters}

## Limitations

{limitations}
"""


@dataclass
class ResultRow:
    """One evaluated set: its name, clip count and metric -> value."""

    split: str
    clips: int
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""


@dataclass
class ClassifyCardInputs:
    name: str
    task: str
    summary: str
    rows: list[ResultRow]
    data: str
    hyperparameters: Mapping[str, Any]
    usage: str
    license: str = "apache-2.0"
    language: str = "en"
    datasets: Sequence[str] = ()
    base_model: str | None = None
    limitations: str = "Trained on a small corpus; expect lower scores on other speakers, microphones and noise."


def results_table(rows: Sequence[ResultRow]) -> str:
    if not rows:
        return "No evaluation was run."
    keys = list(dict.fromkeys(k for r in rows for k in r.metrics))
    cells = [
        [r.split, r.clips, *(f"{r.metrics[k]:.4f}" if k in r.metrics else "" for k in keys), r.notes] for r in rows
    ]
    return markdown_table(["set", "clips", *keys, "notes"], cells)


def render_card(inputs: ClassifyCardInputs) -> str:
    results = [
        EvalResult(
            task_type="audio-classification",
            dataset_type=row.split,
            dataset_name=row.split,
            metric_type=key,
            metric_value=round(value, 4),
        )
        for row in inputs.rows
        for key, value in row.metrics.items()
    ]
    metadata = ModelCardData(
        language=inputs.language,
        license=inputs.license,
        base_model=inputs.base_model,
        datasets=list(inputs.datasets) or None,
        tags=list(TASK_TAGS[inputs.task]),
        pipeline_tag="audio-classification" if inputs.task == "sequence" else None,  # no Hub pipeline for the others
        library_name="transformers",
        model_name=inputs.name,
        eval_results=results or None,
    )
    return CARD.format(
        metadata=metadata.to_yaml(),
        name=inputs.name,
        summary=inputs.summary,
        results=results_table(inputs.rows),
        usage=inputs.usage,
        data=inputs.data,
        hyperparameters=hyperparameter_table(inputs.hyperparameters),
        limitations=inputs.limitations,
    )


def write_card(folder: str | os.PathLike, inputs: ClassifyCardInputs) -> str:
    path = Path(folder) / "README.md"
    path.write_text(render_card(inputs), encoding="utf-8")
    return os.fspath(path)
