"""``run_classification``: the whole classification / x-vector / frame job, called by
``examples/finetune_classification.py``.

Data (label column) -> model with a head sized to the classes -> Trainer (time budget, balanced
sampling or class weights) -> evaluation of every set (:mod:`hf_w2v2.classify.evaluation`: what
each task gives) -> standard output folder (safetensors weights, config with ``id2label``, feature
extractor, ``*_results.json``, per-set reports and PNGs, ``training_curves.png``, ``README.md``
card) -> optional push to the Hub. The folder loads in stock transformers
(``AutoModelForAudioClassification``, ``pipeline("audio-classification")``). For ``xvector`` the
first set's EER threshold goes to ``verification.json`` (``hf-w2v2 verify`` decides with it).

The lifecycle (start, evaluate a set, finish) is every job's (:mod:`hf_w2v2.training.lifecycle`);
this file holds what is classification's own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from hf_w2v2.classify.arguments import ClassifyDataArguments
from hf_w2v2.classify.card import write_classify_card
from hf_w2v2.classify.data import ClassificationCollator
from hf_w2v2.classify.evaluation import evaluate_classes, evaluate_verification, skip_counts
from hf_w2v2.classify.inference import VERIFICATION_FILE
from hf_w2v2.classify.metrics import ClassificationMetrics
from hf_w2v2.classify.model import build_classifier
from hf_w2v2.classify.sets import Sets, load_sets
from hf_w2v2.classify.trainer import ClassificationTrainer, inverse_frequency
from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.processor import build_feature_extractor, uses_attention_mask
from hf_w2v2.training.arguments import CardArguments, ModelArguments
from hf_w2v2.training.budget import budget_for_run
from hf_w2v2.training.curves import DATA_REPORT_FILE
from hf_w2v2.training.feature_cache import CachedFeatureCollator, cache_frozen_features
from hf_w2v2.training.lifecycle import Curves, RunResult, RunStart, finish_run, record_metrics, start_run
from hf_w2v2.training.model_setup import log_parameters
from hf_w2v2.training.trainer import argmax_logits

logger = logging.getLogger(__name__)

CURVES = {
    "sequence": Curves("cross-entropy loss", (("accuracy", "eval accuracy"), ("macro_f1", "eval macro-F1")), "score"),
    "frame": Curves(
        "cross-entropy loss", (("frame_f1", "eval frame F1"), ("frame_accuracy", "eval frame accuracy")), "score"
    ),
    "xvector": Curves("margin-softmax loss", (), "score"),  # evaluated by EER after training, not during it
}
"""Per task, the training loss the curves PNG names and the eval metrics it plots when the run evaluates."""


def build_trainer(
    model_args: ModelArguments, data_args: ClassifyDataArguments, run: RunStart, sets: Sets
) -> ClassificationTrainer:
    model: Any = build_classifier(
        data_args.task,
        sets.names,
        model_args.model_name_or_path,
        model_args.config_name,
        model_args.overrides(),
        model_args.freeze_feature_encoder,
        model_args.frozen_conv_layers,
    )
    log_parameters(model)
    weights = None
    if data_args.balance == "weights" and sets.train is not None:
        weights = inverse_frequency(sets.train.labels, len(sets.names))
    in_training_eval = sets.evals.get("eval") if data_args.task != "xvector" else None
    bucket = data_args.bucket_seconds
    bucket_samples = None if bucket is None else int(bucket * TARGET_SAMPLING_RATE)
    collator: Any = ClassificationCollator(uses_attention_mask(model.config), bucket_samples)
    train, cache_seconds = sets.train, 0.0
    if model_args.cache_frozen_features and run.args.do_train:
        if bucket is not None:
            raise ValueError(
                "--bucket_seconds pads clips past their length, which cached conv outputs cannot follow: "
                "leave it out with --cache_frozen_features"
            )
        named = {name: d for name, d in (("train", train), ("eval", in_training_eval)) if d is not None}
        cache, keyed, cache_seconds = cache_frozen_features(model, named, run.args)
        train, in_training_eval = keyed.get("train"), keyed.get("eval")
        collator = CachedFeatureCollator(base=collator, cache=cache) if cache is not None else collator
    return ClassificationTrainer(
        model=model,
        args=run.args,
        train_dataset=train,
        eval_dataset=in_training_eval,
        data_collator=collator,
        compute_metrics=ClassificationMetrics(sets.names, frame=data_args.task == "frame"),
        preprocess_logits_for_metrics=argmax_logits,
        # The time spent caching is charged to the training budget (it replaces work the steps would do).
        time_budget=budget_for_run(data_args.max_train_minutes, run.checkpoint, cache_seconds),
        balanced_sampling=data_args.balance == "sampler",
        class_weights=weights,
        bucket_samples=bucket_samples,
    )


def train(trainer: ClassificationTrainer, run: RunStart, result: RunResult) -> None:
    """Train (or resume) and save the model, its feature extractor, metrics and trainer state."""
    train_metrics = dict(trainer.train(resume_from_checkpoint=run.checkpoint).metrics)
    trainer.save_model()
    model: Any = trainer.model
    build_feature_extractor(model.config).save_pretrained(run.output_dir)
    record_metrics(trainer, "train", train_metrics, result)
    trainer.save_state()


def run_classification(
    model_args: ModelArguments,
    data_args: ClassifyDataArguments,
    card_args: CardArguments,
    training_args: TrainingArguments,
) -> RunResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    minutes = data_args.max_train_minutes
    run = start_run(training_args, trains=training_args.do_train, labelled=True, max_train_minutes=minutes)
    args = run.args
    if data_args.task == "xvector":  # eval speakers are not training classes: no in-training eval loss
        args.eval_strategy = "no"
    sets = load_sets(model_args, data_args, args)
    Path(run.output_dir, DATA_REPORT_FILE).write_text(sets.reports(), encoding="utf-8")
    trainer = build_trainer(model_args, data_args, run, sets)
    result = RunResult(output_dir=run.output_dir, resumed_from=run.checkpoint)
    if args.do_train:
        train(trainer, run, result)
    details = []
    for name, dataset in sets.evals.items():
        if data_args.task == "xvector":
            row, detail = evaluate_verification(
                trainer.model,
                name,
                dataset,
                sets.eval_labels[name],
                data_args.trials_per_kind,
                data_args.p_target,
                run.output_dir,
            )
            details.append(detail)
        else:
            row = evaluate_classes(trainer, name, dataset, sets.names, data_args.task == "frame")
        skipped = {f"skipped_{k}": v for k, v in skip_counts(dataset).items()}
        row = replace(row, metrics={**row.metrics, **skipped})  # rows are frozen: a new one with the counts
        result.rows.append(row)
        result.metrics.update({f"{name}_{k}": v for k, v in row.metrics.items()})
    if details:
        Path(run.output_dir, VERIFICATION_FILE).write_text(
            json.dumps({**details[0], "all_sets": details}, indent=2) + "\n"
        )
    card = lambda done: write_classify_card(run, model_args, data_args, card_args, sets, trainer.model, done)
    message = f"hf_w2v2 {data_args.task} fine-tuning"
    return finish_run(trainer, run, result, card, CURVES[data_args.task], commit_message=message)
