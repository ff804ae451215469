"""What the model card of a pre-trained encoder says (rendered by :mod:`hf_w2v2.training.model_card`): its
Hub tags and sections (:data:`PRETRAIN_CARD`), what it was trained on, its final contrastive scores, its
hyper-parameters and what the health monitor warned about."""

from __future__ import annotations

from pathlib import Path

from hf_w2v2.pretrain.arguments import DataArguments, ModelArguments, ScheduleArguments
from hf_w2v2.training.arguments import CardArguments, corpus_name
from hf_w2v2.training.curves import CURVES_FILE
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import (
    NO_EVALUATION,
    CardInputs,
    CardSection,
    CardTask,
    markdown_table,
    training_hyperparameters,
    write_model_card,
)

SCORES = (
    "eval_loss",
    "eval_contrastive_loss",
    "eval_diversity_loss",
    "eval_contrastive_accuracy",
    "eval_codevector_perplexity",
)
LIMITATIONS = (
    "A self-supervised encoder: it has no head and transcribes nothing. Fine-tune it (e.g. "
    "`examples/finetune_ctc.py --model_name_or_path <this folder>`) before use."
)
PRETRAIN_CARD = CardTask(
    tags=("wav2vec2", "pretraining", "hf_w2v2"),
    sections=(
        CardSection("Evaluation (held-out audio)", "$scores_table\n\nTraining curves: `$curves_file`."),
        CardSection("Training hyper-parameters", "$hyperparameters_table"),
        CardSection("Limitations", "$limitations"),
    ),
)
"""What every pre-training card says: no Hub pipeline or eval results (an encoder has no task yet), one
score per line."""


def write_pretrain_card(
    run: RunStart,
    model_args: ModelArguments,
    schedule: ScheduleArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    result: RunResult,
) -> str:
    """The run's ``README.md``."""
    init = model_args.model_name_or_path or f"random initialisation ({model_args.config_name} config)"
    sources = [corpus_name(s) for s in data_args.train_sources]
    scores = [(key, f"{result.metrics[key]:.4f}") for key in SCORES if key in result.metrics]
    extra: dict[str, object] = {
        "init": init,
        "gumbel": f"{schedule.gumbel_start} -> {schedule.gumbel_end} x {schedule.gumbel_decay}",
    }
    extra |= {"max_train_minutes": schedule.max_train_minutes, "max_seconds": data_args.max_seconds}
    extra |= {"train_runtime_s": round(result.metrics.get("train_runtime", 0.0)), **model_args.overrides()}
    inputs = CardInputs(
        model_name=card_args.model_name or Path(run.output_dir).resolve().name,
        task=PRETRAIN_CARD,
        summary=f"A wav2vec 2.0 encoder pre-trained (self-supervised, contrastive) from {init} with hf_w2v2 "
        f"(`examples/pretrain.py`) on {', '.join(f'`{s}`' for s in sources)}.",
        language=card_args.language,
        license=card_args.license,
        datasets=[card_args.dataset_name] if card_args.dataset_name else sources,
        hyperparameters=training_hyperparameters(run.args, extra, result.metrics.get("epoch")),
        intended_use=card_args.intended_use or "",  # no section of its own: for custom templates
        limitations=(card_args.limitations or LIMITATIONS) + health_paragraph(result.health_warnings),
        extra={
            "scores_table": markdown_table(["metric", "value"], scores) if scores else NO_EVALUATION,
            "curves_file": CURVES_FILE,
        },
    )
    return write_model_card(run.output_dir, inputs, card_args.card_template)
