"""What the model card of a classifier or speaker-embedding model says (rendered by
:mod:`hf_w2v2.training.model_card`): per task (``sequence``, ``xvector``, ``frame``) its Hub tags, pipeline
tag and sections (:data:`CLASSIFY_CARDS`), and the run's results, data and hyper-parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hf_w2v2.classify.arguments import ClassifyDataArguments
from hf_w2v2.classify.sets import Sets
from hf_w2v2.training.arguments import CardArguments, ModelArguments, corpus_name
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import (
    CardInputs,
    CardSection,
    CardTask,
    training_hyperparameters,
    write_model_card,
)
from hf_w2v2.training.model_setup import describe_frozen_encoder

TASK_TAGS = {
    "sequence": ("audio-classification", "wav2vec2", "hf_w2v2"),
    "xvector": ("speaker-verification", "x-vector", "wav2vec2", "hf_w2v2"),
    "frame": ("voice-activity-detection", "audio-frame-classification", "wav2vec2", "hf_w2v2"),
}
LIMITATIONS = "Trained on a small corpus; expect lower scores on other speakers, microphones and noise."
USAGE = {
    "sequence": """```bash
hf-w2v2 classify $model_name clip.wav --top-k 3
```

```python
from transformers import pipeline

classifier = pipeline("audio-classification", model="$model_name")
print(classifier("clip.wav"))
```""",
    "xvector": """```bash
hf-w2v2 verify $model_name a.wav b.wav     # score and same/different at the stored EER threshold
hf-w2v2 embed $model_name clips/ --output embeddings.npz
```""",
    "frame": """```python
from transformers import AutoModelForAudioFrameClassification

model = AutoModelForAudioFrameClassification.from_pretrained("$model_name")  # logits (B, frames, 2), 20 ms frames
```""",
}
"""Per task, the card's "Try it" section (``$model_name``: the model's name)."""


def classify_card_task(task: str) -> CardTask:
    """The card of one classification task: only ``sequence`` has a Hub pipeline (``audio-classification``)."""
    return CardTask(
        tags=TASK_TAGS[task],
        pipeline_tag="audio-classification" if task == "sequence" else None,
        result_task="audio-classification",
        size_label="clips",
        decimals=4,
        sections=(
            CardSection("Evaluation", "$eval_table"),
            CardSection("Try it", USAGE[task]),
            CardSection("Training data", "$data_section"),
            CardSection("Training hyper-parameters", "$hyperparameters_table"),
            CardSection("Limitations", "$limitations"),
        ),
    )


CLASSIFY_CARDS = {task: classify_card_task(task) for task in TASK_TAGS}


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
    inputs = CardInputs(
        model_name=card_args.model_name or Path(run.output_dir).resolve().name,
        task=CLASSIFY_CARDS[data_args.task],
        summary=f"A wav2vec 2.0 {data_args.task} model fine-tuned from {init} with hf_w2v2 "
        f"(`examples/finetune_classification.py`).",
        language=card_args.language,
        license=card_args.license,
        datasets=[card_args.dataset_name or corpus_name(data_args.train_data)] if data_args.train_data else [],
        evals=result.rows,
        hyperparameters=training_hyperparameters(run.args, extra, result.metrics.get("epoch")),
        data_section=data_lines(data_args, sets),
        intended_use=card_args.intended_use or "",  # no section of its own: for custom templates
        limitations=(card_args.limitations or LIMITATIONS) + health_paragraph(result.health_warnings),
    )
    return write_model_card(run.output_dir, inputs, card_args.card_template)
