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

from hf_w2v2.classify.arguments import ClassifyDataArguments
from hf_w2v2.classify.sets import Sets
from hf_w2v2.training.arguments import CardArguments, ModelArguments, corpus_name
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import hyperparameter_table, markdown_table, training_hyperparameters
from hf_w2v2.training.model_setup import describe_frozen_encoder

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


USAGE = {
    "sequence": "```bash\nhf-w2v2 classify {path} clip.wav --top-k 3\n```\n\n```python\nfrom transformers import "
    'pipeline\n\nclassifier = pipeline("audio-classification", model="{path}")\nprint(classifier("clip.wav"))\n```',
    "xvector": "```bash\nhf-w2v2 verify {path} a.wav b.wav     # score and same/different at the stored EER "
    "threshold\nhf-w2v2 embed {path} clips/ --output embeddings.npz\n```",
    "frame": "```python\nfrom transformers import AutoModelForAudioFrameClassification\n\nmodel = "
    'AutoModelForAudioFrameClassification.from_pretrained("{path}")  # logits (B, frames, 2), 20 ms frames\n```',
}
"""Per task, the card's "Try it" section (``{path}``: the model's name)."""


def data_lines(data_args: ClassifyDataArguments, sets: Sets) -> str:
    """The card's training-data section: corpus, counts, classes, and every evaluated set's counts."""
    lines = [f"- Training corpus: `{corpus_name(data_args.train_data)}`" if data_args.train_data else "- none"]
    if sets.train is not None:
        lines.append(f"- {sets.train.report.format()}")
    lines.append(f"- {len(sets.names)} classes: {', '.join(sets.names[:40])}")
    lines += [f"- {d.report.format()}" for d in sets.evals.values()]
    return "\n".join(lines)


def write_classify_card(
    run: RunStart,
    model_args: ModelArguments,
    data_args: ClassifyDataArguments,
    card_args: CardArguments,
    sets: Sets,
    model: Any,
    result: RunResult,
) -> str:
    """The run's ``README.md``: results per set, usage, data, hyper-parameters, the health monitor's warnings."""
    init = model_args.initialisation()
    extra = {
        "task": data_args.task,
        "init": init,
        "feature_encoder": describe_frozen_encoder(model),
        "balance": data_args.balance,
        "max_train_minutes": data_args.max_train_minutes,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0)),
        **model_args.overrides(),
    }
    name = card_args.model_name or Path(run.output_dir).resolve().name
    inputs = ClassifyCardInputs(
        name=name,
        task=data_args.task,
        summary=f"A wav2vec 2.0 {data_args.task} model fine-tuned from {init} with hf_w2v2 "
        f"(`examples/finetune_classification.py`).",
        rows=result.rows,
        data=data_lines(data_args, sets),
        hyperparameters=training_hyperparameters(run.args, extra, result.metrics.get("epoch")),
        usage=USAGE[data_args.task].replace("{path}", name),
        license=card_args.license,
        language=card_args.language,
        datasets=[card_args.dataset_name or corpus_name(data_args.train_data)] if data_args.train_data else [],
        limitations=(card_args.limitations or ClassifyCardInputs.limitations)
        + health_paragraph(result.health_warnings),
    )
    return write_card(run.output_dir, inputs)
