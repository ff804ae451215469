"""``run_finetuning``: the whole CTC fine-tuning job, called by ``examples/finetune_ctc.py``.

Data -> vocabulary/processor -> model -> Trainer -> final evaluation (WER/CER and a
predictions file per split) -> standard output folder (safetensors weights, config,
processor, ``*_results.json``, ``training_curves.png``, ``data_report.txt``, ``README.md``
model card) -> optional push to the Hub. The lifecycle (start, evaluate a set, finish) is every
job's, :mod:`hf_w2v2.training.lifecycle`; this file holds what is CTC's own.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from transformers import TrainingArguments

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.data.sampler import check_fits
from hf_w2v2.finetune.arguments import CTCModelArguments, DataArguments
from hf_w2v2.finetune.card import eval_row, split_prefix, write_ctc_card
from hf_w2v2.finetune.data import PreparedData, Split
from hf_w2v2.finetune.metrics import CTCMetrics, frame_counts_from_samples
from hf_w2v2.finetune.model import build_ctc_model
from hf_w2v2.finetune.predictions import write_predictions
from hf_w2v2.finetune.prepare import prepare_data, write_data_report
from hf_w2v2.finetune.trainer import CTCTrainer
from hf_w2v2.models.configuration import Wav2Vec2Config
from hf_w2v2.training.arguments import CardArguments
from hf_w2v2.training.budget import budget_for_run
from hf_w2v2.training.curves import DATA_REPORT_FILE
from hf_w2v2.training.distributed import DistributedReportCallback
from hf_w2v2.training.feature_cache import CachedFeatureCollator, cache_frozen_features
from hf_w2v2.training.lifecycle import RunResult, RunStart, evaluate_set, finish_run, record_metrics, start_run
from hf_w2v2.training.model_setup import log_parameters
from hf_w2v2.training.trainer import argmax_logits

logger = logging.getLogger(__name__)


def build_trainer(
    model_args: CTCModelArguments, data_args: DataArguments, run: RunStart, data: PreparedData
) -> CTCTrainer:
    """Model with a head sized to the vocabulary, collator (with cached frozen conv outputs), metrics, budget."""
    tokenizer, args = data.processor.tokenizer, run.args
    model = build_ctc_model(
        len(tokenizer),
        tokenizer.pad_token_id,
        model_args.model_name_or_path,
        model_args.config_name,
        model_args.overrides(),
        model_args.freeze_feature_encoder,
        model_args.frozen_conv_layers,
    )
    log_parameters(model)
    collator: Any = DataCollatorCTCWithPadding.from_processor(data.processor)
    if model_args.cache_frozen_features and args.do_train:
        splits = [s for s in (data.train, data.evals.get("eval")) if s is not None]
        cache, keyed, data.cache_seconds = cache_frozen_features(model, {s.name: s.dataset for s in splits}, args)
        for split in splits:
            split.dataset = keyed[split.name]
        collator = CachedFeatureCollator(base=collator, cache=cache) if cache is not None else collator
    eval_split = data.evals.get("eval")
    return CTCTrainer(
        model=model,
        args=args,
        train_dataset=data.train.dataset if data.train else None,
        eval_dataset=eval_split.dataset if eval_split else None,
        data_collator=collator,
        processing_class=data.processor,
        compute_metrics=split_metrics(eval_split, tokenizer, model.config) if eval_split else None,
        preprocess_logits_for_metrics=argmax_logits,
        # The time spent caching is charged to the training budget (it replaces work the steps would do).
        time_budget=budget_for_run(data_args.max_train_minutes, run.checkpoint, data.cache_seconds),
        skip_nonfinite_loss=data_args.skip_nonfinite_loss,
        max_batch_seconds=data_args.max_batch_seconds,
        callbacks=[DistributedReportCallback()],  # logs DDP/FSDP/ZeRO and, at the end, each rank's weight checksum
    )


def split_metrics(split: Split, tokenizer: Any, config: Wav2Vec2Config) -> CTCMetrics:
    """WER/CER for ``split``, trimming each prediction to the item's frames."""
    frames = frame_counts_from_samples(split.frame_source_lengths, config.conv_kernel, config.conv_stride)
    return CTCMetrics(tokenizer=tokenizer, frame_counts=frames)


def evaluate_split(
    trainer: CTCTrainer, split: Split, data_args: DataArguments, result: RunResult, before_training: bool = False
) -> None:
    """WER/CER of one split (``eval_*``, ``eval_before_*`` or ``test_<name>_*`` keys) into ``result``, and its
    predictions file."""
    model: Any = trainer.model
    metrics_fn = split_metrics(split, trainer.processing_class.tokenizer, model.config)  # type: ignore[union-attr]
    prefix = split_prefix(split, before_training)
    output = evaluate_set(trainer, split.dataset, prefix, metrics_fn)
    metrics = dict(output.metrics or {})
    group = prefix if before_training else split.name if split.name == "eval" else f"test_{split.name}"
    trainer.log_metrics(prefix if before_training else split.name, metrics)
    trainer.save_metrics(group, metrics)
    result.metrics.update(metrics)
    result.rows.append(eval_row(split, metrics, data_args, before_training))
    if trainer.is_world_process_zero():
        name = f"{split.name}_before" if before_training else split.name
        path = os.path.join(str(trainer.args.output_dir), data_args.predictions_file.format(split=name))
        write_predictions(path, split.names, *metrics_fn.transcripts(output))


def run_finetuning(
    model_args: CTCModelArguments, data_args: DataArguments, card_args: CardArguments, training_args: TrainingArguments
) -> RunResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    minutes = data_args.max_train_minutes
    run = start_run(training_args, trains=training_args.do_train, labelled=True, max_train_minutes=minutes)
    args = run.args
    args.length_column_name = "input_length"  # the CTC datasets' lengths, for group_by_length
    if minutes is not None and args.max_steps <= 0 and args.num_train_epochs < 1e6:
        logger.info("max_train_minutes=%s: training runs until the budget is spent", minutes)
    data = prepare_data(model_args, data_args, args, run.checkpoint)
    if data_args.max_batch_seconds is not None and data.train is not None:
        check_fits(data.train.frame_source_lengths, round(data_args.max_batch_seconds * TARGET_SAMPLING_RATE))
    write_data_report(os.path.join(run.output_dir, DATA_REPORT_FILE), data)
    trainer = build_trainer(model_args, data_args, run, data)
    result = RunResult(output_dir=run.output_dir, resumed_from=run.checkpoint)
    for split in data.evals.values() if data_args.eval_before_training else ():  # the starting point: shows the gain
        evaluate_split(trainer, split, data_args, result, before_training=True)
    if args.do_train:
        if data.train is None:
            raise ValueError("--do_train needs --train_data")
        data.processor.save_pretrained(run.output_dir)
        train_metrics = dict(trainer.train(resume_from_checkpoint=run.checkpoint).metrics)
        if data.train.report.kept_seconds:  # known for eager splits, not for a stream
            seen = trainer.state.epoch * data.train.report.kept_seconds  # audio seconds the optimizer saw
            train_metrics["train_audio_seconds"] = round(seen, 1)
            train_metrics["train_audio_seconds_per_second"] = round(seen / max(train_metrics["train_runtime"], 1e-9), 2)
        if data.cache_seconds:
            train_metrics["train_cache_seconds"] = round(data.cache_seconds, 3)  # not in train_runtime
        trainer.save_model()
        record_metrics(trainer, "train", train_metrics, result)
        trainer.save_state()
    for split in data.evals.values():
        evaluate_split(trainer, split, data_args, result)
    card = lambda done: write_ctc_card(run, model_args, data_args, card_args, data, trainer.model, done)
    return finish_run(trainer, run, result, card, commit_message="hf_w2v2 CTC fine-tuning")
