"""What the model card of a CTC fine-tuning run says (rendered by :mod:`hf_w2v2.training.model_card`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hf_w2v2.finetune.arguments import CTCModelArguments, DataArguments
from hf_w2v2.finetune.data import PreparedData, Split
from hf_w2v2.training.arguments import CardArguments, corpus_name
from hf_w2v2.training.curves import CURVES_FILE, DATA_REPORT_FILE
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import CardInputs, EvalRow, training_hyperparameters, write_model_card
from hf_w2v2.training.model_setup import describe_frozen_encoder
from hf_w2v2.training.nonfinite import NONFINITE_METRIC


def split_prefix(split: Split, before_training: bool = False) -> str:
    """Metric-key prefix of a split: ``eval``, ``eval_before`` (before training) or ``test_<name>``."""
    prefix = "eval" if split.name == "eval" else f"test_{split.name}"
    return f"{prefix}_before" if before_training else prefix


def eval_row(
    split: Split, metrics: dict[str, float], data_args: DataArguments, before_training: bool = False
) -> EvalRow:
    prefix = split_prefix(split, before_training)
    source = data_args.eval_data if split.name == "eval" else dict(data_args.named_test_sets())[split.name]
    return EvalRow(
        dataset=corpus_name(str(source)),
        split=f"{split.name} (before training)" if before_training else split.name,
        wer=metrics[f"{prefix}_wer"],
        cer=metrics[f"{prefix}_cer"],
        utterances=split.report.kept,
        hours=split.report.kept_seconds / 3600,
        before_training=before_training,
    )


def training_corpora(data_args: DataArguments, train_name: str) -> list[tuple[str, int]]:
    """(name, times listed) per distinct training corpus, in order: a corpus given twice is read twice."""
    if not data_args.train_data:
        return []
    sources = [data_args.train_data, *data_args.extra_train_data]
    names = [train_name] + [corpus_name(source) for source in data_args.extra_train_data]
    keys = [os.path.realpath(source) for source in sources]
    first = {key: names[keys.index(key)] for key in keys}
    return [(first[key], keys.count(key)) for key in dict.fromkeys(keys)]


def data_section(data_args: DataArguments, data: PreparedData, corpora: list[tuple[str, int]]) -> str:
    text = [
        "- Training corpus: "
        + " + ".join(
            f"`{name}`" + (f" (x{times}: its clips are seen {times} times as often)" if times > 1 else "")
            for name, times in corpora
        )
    ]
    report = data.train.report if data.train else None
    if report is not None and report.total:  # a stream's counts are in the training log
        text.append(
            f"- {report.kept} utterances, {report.kept_seconds / 3600:.2f} h after filtering "
            f"({report.total - report.kept} dropped: see `{DATA_REPORT_FILE}`)"
        )
    text.append(
        f"- Vocabulary: {len(data.processor.tokenizer)} tokens ({data.vocab_source}), "
        f"transcripts normalised to case `{data_args.case}`"
    )
    return "\n".join(text)


def write_ctc_card(
    run: RunStart,
    model_args: CTCModelArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    data: PreparedData,
    model: Any,
    result: RunResult,
) -> str:
    """The run's ``README.md``: evaluation rows, data, hyper-parameters, and the health monitor's warnings."""
    train_name = card_args.dataset_name or (corpus_name(data_args.train_data) if data_args.train_data else "")
    corpora = training_corpora(data_args, train_name)
    init = model_args.initialisation()
    extra_hp = {
        "init": init,
        "feature_encoder": describe_frozen_encoder(model),
        "max_train_minutes": data_args.max_train_minutes,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0)),
        "nonfinite_loss_batches_skipped": result.metrics.get(NONFINITE_METRIC, 0),
        **model_args.overrides(),
    }
    pretrained = model_args.model_name_or_path
    inputs = CardInputs(
        model_name=card_args.model_name or Path(run.output_dir).resolve().name,
        language=card_args.language,
        license=card_args.license,
        base_model=pretrained if pretrained and not os.path.isdir(pretrained) else None,
        initialisation=f"pre-trained weights from `{pretrained}`" if pretrained else None,
        datasets=[name for name, _ in corpora],
        evals=result.rows,
        hyperparameters=training_hyperparameters(run.args, extra_hp, result.metrics.get("epoch")),
        data_section=data_section(data_args, data, corpora),
        summary=f"A wav2vec 2.0 CTC speech recogniser fine-tuned from {init} with "
        "hf_w2v2 (`examples/finetune_ctc.py`); greedy decoding.",
        intended_use=card_args.intended_use or CardInputs.intended_use,
        limitations=(card_args.limitations or CardInputs.limitations) + health_paragraph(result.health_warnings),
        sampling_rate=data.processor.feature_extractor.sampling_rate,
        extra={"curves_file": CURVES_FILE, "data_report_file": DATA_REPORT_FILE},
    )
    return write_model_card(run.output_dir, inputs, card_args.card_template)
