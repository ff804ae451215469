"""The model card of a pre-trained encoder (``README.md`` with Hub metadata), built with the shared
tables of :mod:`hf_w2v2.training.model_card`: what it was trained on, its final contrastive scores,
its hyper-parameters and what the health monitor warned about."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCardData

from hf_w2v2.pretrain.arguments import DataArguments, ModelArguments, ScheduleArguments
from hf_w2v2.training.arguments import CardArguments, corpus_name
from hf_w2v2.training.curves import CURVES_FILE
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import hyperparameter_table, markdown_table, training_hyperparameters

TAGS = ["wav2vec2", "pretraining", "hf_w2v2"]
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


def write_pretrain_card(
    run: RunStart,
    model_args: ModelArguments,
    schedule: ScheduleArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    result: RunResult,
) -> str:
    """The run's ``README.md``."""
    name = card_args.model_name or Path(run.output_dir).resolve().name
    init = model_args.model_name_or_path or f"random initialisation ({model_args.config_name} config)"
    sources = [corpus_name(s) for s in data_args.train_sources]
    metadata = ModelCardData(
        language=card_args.language,
        license=card_args.license,
        datasets=[card_args.dataset_name] if card_args.dataset_name else sources,
        tags=TAGS,
        library_name="transformers",
        model_name=name,
    )
    scores = [(key, f"{result.metrics[key]:.4f}") for key in SCORES if key in result.metrics]
    extra: dict[str, object] = {
        "init": init,
        "gumbel": f"{schedule.gumbel_start} -> {schedule.gumbel_end} x {schedule.gumbel_decay}",
    }
    extra |= {"max_train_minutes": schedule.max_train_minutes, "max_seconds": data_args.max_seconds}
    extra |= {"train_runtime_s": round(result.metrics.get("train_runtime", 0.0)), **model_args.overrides()}
    text = "\n\n".join(
        [
            f"---\n{metadata.to_yaml()}\n---",
            f"# {name}",
            f"A wav2vec 2.0 encoder pre-trained (self-supervised, contrastive) from {init} with hf_w2v2 "
            f"(`examples/pretrain.py`) on {', '.join(f'`{s}`' for s in sources)}.",
            "## Evaluation (held-out audio)",
            markdown_table(["metric", "value"], scores) if scores else "No evaluation was run.",
            f"Training curves: `{CURVES_FILE}`.",
            "## Training hyper-parameters",
            hyperparameter_table(training_hyperparameters(run.args, extra, result.metrics.get("epoch"))),
            "## Limitations",
            (card_args.limitations or LIMITATIONS) + health_paragraph(result.health_warnings),
        ]
    )
    path = Path(run.output_dir) / "README.md"
    path.write_text(text + "\n", encoding="utf-8")
    return str(path)
