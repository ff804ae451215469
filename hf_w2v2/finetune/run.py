"""``run_finetuning``: the whole CTC fine-tuning job, called by ``examples/finetune_ctc.py``.

Data -> vocabulary/processor -> model -> Trainer -> final evaluation (WER/CER and a
predictions file per split) -> standard output folder (safetensors weights, config,
processor, ``*_results.json``, ``training_curves.png``, ``data_report.txt``, ``README.md``
model card) -> optional push to the Hub.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments, set_seed

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.data.sampler import check_fits
from hf_w2v2.finetune.arguments import CardArguments, DataArguments, ModelArguments, corpus_name
from hf_w2v2.finetune.data import PreparedData, Split, choose_processor, prepare_split, read_utterances
from hf_w2v2.finetune.feature_cache import CachedFeatureCollator, FrozenFeatureCache, attach_cache
from hf_w2v2.finetune.metrics import CTCMetrics, argmax_logits, frame_counts_from_samples
from hf_w2v2.finetune.model import build_ctc_model, count_parameters, describe_frozen_encoder
from hf_w2v2.finetune.predictions import write_predictions
from hf_w2v2.finetune.resume import check_resume_vocabulary
from hf_w2v2.finetune.stream import stream_shards, stream_split
from hf_w2v2.finetune.trainer import CTCTrainer
from hf_w2v2.models.configuration import Wav2Vec2Config, config_from_name
from hf_w2v2.text.coverage import coverage_report
from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.training.budget import budget_for_run, budget_schedule
from hf_w2v2.training.checkpoints import resolve_checkpoint
from hf_w2v2.training.curves import CURVES_FILE, DATA_REPORT_FILE, plot_training_curves
from hf_w2v2.training.distributed import DistributedReportCallback
from hf_w2v2.training.hub import default_repo_id, push_model_folder
from hf_w2v2.training.model_card import CardInputs, EvalRow, training_hyperparameters, write_model_card
from hf_w2v2.training.nonfinite import NONFINITE_METRIC

logger = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """What a run produced."""

    output_dir: str
    metrics: dict[str, float] = field(default_factory=dict)
    evals: list[EvalRow] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    hub_url: str | None = None


def base_config(model_args: ModelArguments) -> Wav2Vec2Config:
    """The model's config before the head is sized (decides the processor's attention-mask policy)."""
    if model_args.config_name:
        return config_from_name(model_args.config_name, **model_args.overrides())
    return Wav2Vec2Config.from_pretrained(str(model_args.model_name_or_path))


def prepare_data(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments, checkpoint: str | None
) -> PreparedData:
    """Read the corpora, pick the vocabulary, report coverage, and build filtered datasets."""
    normalizer = TextNormalizer(case=data_args.case)  # type: ignore[arg-type]  # checked by DataArguments
    read = lambda src, limit=None: read_utterances(src, data_args.text_column, data_args.audio_column, limit)
    stream = data_args.train_loading == "stream" and training_args.do_train  # checked before any data is read
    shards, streamed_texts = stream_shards(model_args, data_args, training_args) if stream else ([], [])
    train_sources = [data_args.train_data] + data_args.extra_train_data if data_args.train_data and not stream else []
    train_utts = [u for source in train_sources for u in read(source)][: data_args.max_train_samples]
    train_texts = streamed_texts if stream else [u.text or "" for u in train_utts]
    eval_sets = [("eval", data_args.eval_data)] if data_args.eval_data else []
    eval_utts = {name: read(path, data_args.max_eval_samples) for name, path in eval_sets + data_args.named_test_sets()}
    config = base_config(model_args)
    processor, source = choose_processor(
        config,
        train_texts,
        normalizer,
        tokenizer_name_or_path=data_args.tokenizer_name_or_path,
        model_name_or_path=model_args.model_name_or_path,
        min_count=data_args.vocab_min_count,
    )
    if checkpoint is not None:
        check_resume_vocabulary(checkpoint, processor.tokenizer.get_vocab())
    all_eval_texts = [u.text or "" for utts in eval_utts.values() for u in utts]
    coverage = coverage_report(processor.tokenizer.get_vocab(), train_texts, all_eval_texts or None, normalizer)
    coverage.eval_sets = {name: len(utts) for name, utts in eval_utts.items()}  # "eval: 100 clips (eval 50, ...)"
    logger.info("vocabulary (%d tokens) %s\n%s", len(processor.tokenizer), source, coverage.format())
    workers = data_args.preprocessing_num_workers
    train = (
        stream_split(shards, processor, config, normalizer, data_args, training_args)
        if shards
        else prepare_split(
            "train",
            train_utts,
            processor,
            config,
            normalizer,
            data_args.min_duration,
            data_args.max_duration,
            data_args.drop_oov,
            workers,
            lazy=data_args.train_loading == "lazy",
        )
        if train_utts and training_args.do_train
        else None
    )
    evals = {
        name: prepare_split(name, utts, processor, config, normalizer, 0.0, None, False, workers)
        for name, utts in eval_utts.items()
    }
    return PreparedData(processor=processor, train=train, evals=evals, coverage=coverage, vocab_source=source)


def write_data_report(path: str, data: PreparedData) -> None:
    """Vocabulary source, coverage and per-split filter counts, for people and for the card."""
    lines = [f"vocabulary: {len(data.processor.tokenizer)} tokens, {data.vocab_source}"]
    lines += [data.coverage.format()] if data.coverage is not None else []
    for split in ([data.train] if data.train else []) + list(data.evals.values()):
        lines.append(f"{split.name}: {split.report.format()}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def prepare_training_args(args: TrainingArguments, data_args: DataArguments) -> TrainingArguments:
    """Settings the CTC datasets need; the Hub push is done once at the end (see :mod:`.hub`)."""
    args.remove_unused_columns = False  # keep input_length for group_by_length
    args.length_column_name = "input_length"
    args.label_names = ["labels"]
    if data_args.max_train_minutes is not None and args.max_steps <= 0 and args.num_train_epochs < 1e6:
        logger.info("max_train_minutes=%s: training runs until the budget is spent", data_args.max_train_minutes)
    if data_args.max_train_minutes is not None:  # refuse a schedule the budget cannot run before any data work
        budget_schedule(args)
    return args


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    data: PreparedData,
    checkpoint: str | None,
) -> CTCTrainer:
    """Model with a head sized to the vocabulary, collator, metrics, budget and the Trainer."""
    tokenizer = data.processor.tokenizer
    model = build_ctc_model(
        len(tokenizer),
        tokenizer.pad_token_id,
        model_args.model_name_or_path,
        model_args.config_name,
        model_args.overrides(),
        model_args.freeze_feature_encoder,
        model_args.frozen_conv_layers,
    )
    total, trainable = count_parameters(model)
    logger.info("model: %.2f M parameters, %.2f M trainable", total / 1e6, trainable / 1e6)
    collator: DataCollatorCTCWithPadding | CachedFeatureCollator
    collator = DataCollatorCTCWithPadding.from_processor(data.processor)
    if model_args.cache_frozen_features and training_args.do_train:
        collator = cache_frozen_features(model, data, training_args, collator)
    # The time spent caching is charged to the training budget (it replaces work the steps would do).
    budget = budget_for_run(data_args.max_train_minutes, checkpoint, data.cache_seconds)
    eval_split = data.evals.get("eval")
    return CTCTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train.dataset if data.train else None,
        eval_dataset=eval_split.dataset if eval_split else None,
        data_collator=collator,
        processing_class=data.processor,
        compute_metrics=split_metrics(eval_split, tokenizer, model.config) if eval_split else None,
        preprocess_logits_for_metrics=argmax_logits,
        time_budget=budget,
        skip_nonfinite_loss=data_args.skip_nonfinite_loss,
        max_batch_seconds=data_args.max_batch_seconds,
        callbacks=[DistributedReportCallback()],  # logs DDP/FSDP/ZeRO and, at the end, each rank's weight checksum
    )


def cache_frozen_features(
    model: Any, data: PreparedData, training_args: TrainingArguments, collator: DataCollatorCTCWithPadding
) -> DataCollatorCTCWithPadding | CachedFeatureCollator:
    """Compute the frozen conv blocks once for the train and eval splits (their datasets gain a cache
    key; the time taken goes to ``data.cache_seconds``) and let the model's encoder start from them;
    see :mod:`hf_w2v2.finetune.feature_cache`."""
    encoder = model.base_encoder().feature_extractor
    frozen = encoder.num_frozen_layers
    if frozen == 0:
        logger.warning("--cache_frozen_features: no conv block is frozen, nothing to cache")
        return collator
    dtype = torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else None
    device = training_args.device
    model.to(device)
    cache = FrozenFeatureCache(num_layers=frozen)
    splits = ([data.train] if data.train else []) + ([data.evals["eval"]] if "eval" in data.evals else [])
    start = time.monotonic()
    key = 0
    for split in splits:
        split.dataset = cache.add(
            encoder,
            split.dataset,
            first_key=key,
            device=device,
            autocast_dtype=dtype,
            show_progress=not training_args.disable_tqdm,
            desc=f"caching conv ({split.name})",
        )
        key += len(split.dataset)
    data.cache_seconds = time.monotonic() - start
    logger.info(
        "cached the first %d conv blocks for %d utterances: %.2f GB in memory, %.1f s",
        frozen,
        len(cache.features),
        cache.nbytes / 1e9,
        data.cache_seconds,
    )
    attach_cache(model, frozen)
    return CachedFeatureCollator(base=collator, cache=cache)


def split_metrics(split: Split, tokenizer: Any, config: Wav2Vec2Config) -> CTCMetrics:
    """WER/CER for ``split``, trimming each prediction to the item's frames."""
    frames = frame_counts_from_samples(split.frame_source_lengths, config.conv_kernel, config.conv_stride)
    return CTCMetrics(tokenizer=tokenizer, frame_counts=frames)


def split_prefix(split: Split, before_training: bool = False) -> str:
    """Metric-key prefix of a split: ``eval``, ``eval_before`` (before training) or ``test_<name>``."""
    prefix = "eval" if split.name == "eval" else f"test_{split.name}"
    return f"{prefix}_before" if before_training else prefix


def evaluate_split(
    trainer: CTCTrainer, split: Split, output_dir: str, predictions_file: str, before_training: bool = False
) -> dict[str, float]:
    """WER/CER of one split (``eval_*``, ``eval_before_*`` or ``test_<name>_*`` keys) and its predictions file."""
    model: Any = trainer.model
    metrics_fn = split_metrics(split, trainer.processing_class.tokenizer, model.config)  # type: ignore[union-attr]
    # The metrics trim predictions with this split's frame counts; the Trainer's own (the eval split's, used by
    # evaluations during training) is put back afterwards, or they would be scored with another split's counts.
    during_training, trainer.compute_metrics = trainer.compute_metrics, metrics_fn
    try:
        metrics = trainer.evaluate(eval_dataset=split.dataset, metric_key_prefix=split_prefix(split, before_training))
    finally:
        trainer.compute_metrics = during_training
    if trainer.is_world_process_zero():
        name = f"{split.name}_before" if before_training else split.name
        path = os.path.join(output_dir, predictions_file.format(split=name))
        write_predictions(path, split.names, metrics_fn.last_references or [], metrics_fn.last_hypotheses or [])
    return metrics


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


def card_inputs(
    model_args: ModelArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    training_args: TrainingArguments,
    data: PreparedData,
    evals: list[EvalRow],
    train_metrics: dict[str, float],
    feature_encoder: str,
) -> CardInputs:
    """What the model card says about this run."""
    train_name = card_args.dataset_name or (corpus_name(data_args.train_data) if data_args.train_data else "")
    corpora = training_corpora(data_args, train_name)
    init = model_args.model_name_or_path or f"random initialisation ({model_args.config_name} config)"
    report = data.train.report if data.train else None
    data_text = [
        "- Training corpus: "
        + " + ".join(
            f"`{name}`" + (f" (x{times}: its clips are seen {times} times as often)" if times > 1 else "")
            for name, times in corpora
        )
    ]
    if report is not None and report.total:  # a stream's counts are in the training log
        data_text.append(
            f"- {report.kept} utterances, {report.kept_seconds / 3600:.2f} h after filtering "
            f"({report.total - report.kept} dropped: see `{DATA_REPORT_FILE}`)"
        )
    data_text.append(
        f"- Vocabulary: {len(data.processor.tokenizer)} tokens ({data.vocab_source}), "
        f"transcripts normalised to case `{data_args.case}`"
    )
    extra_hp = {
        "init": init,
        "feature_encoder": feature_encoder,
        "max_train_minutes": data_args.max_train_minutes,
        "train_runtime_s": round(train_metrics.get("train_runtime", 0.0)),
        "nonfinite_loss_batches_skipped": train_metrics.get(NONFINITE_METRIC, 0),
        **model_args.overrides(),
    }
    summary = (
        f"A wav2vec 2.0 CTC speech recogniser fine-tuned from {init} with "
        "hf_w2v2 (`examples/finetune_ctc.py`); greedy decoding."
    )
    return CardInputs(
        model_name=card_args.model_name or Path(str(training_args.output_dir)).resolve().name,
        language=card_args.language,
        license=card_args.license,
        base_model=model_args.model_name_or_path
        if model_args.model_name_or_path and not os.path.isdir(model_args.model_name_or_path)
        else None,
        initialisation=f"pre-trained weights from `{model_args.model_name_or_path}`"
        if model_args.model_name_or_path
        else None,
        datasets=[name for name, _ in corpora],
        evals=evals,
        hyperparameters=training_hyperparameters(training_args, extra_hp, train_metrics.get("epoch")),
        data_section="\n".join(data_text),
        summary=summary,
        intended_use=card_args.intended_use or CardInputs.intended_use,
        limitations=card_args.limitations or CardInputs.limitations,
        sampling_rate=data.processor.feature_extractor.sampling_rate,
        extra={"curves_file": CURVES_FILE, "data_report_file": DATA_REPORT_FILE},
    )


def run_finetuning(
    model_args: ModelArguments, data_args: DataArguments, card_args: CardArguments, training_args: TrainingArguments
) -> FinetuneResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    set_seed(training_args.seed)
    if not training_args.output_dir:
        raise ValueError("--output_dir is required: the folder the model, card and results are written to")
    output_dir: str = training_args.output_dir
    os.makedirs(output_dir, exist_ok=True)
    checkpoint = (
        resolve_checkpoint(training_args.resume_from_checkpoint, output_dir) if training_args.do_train else None
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False
    training_args = prepare_training_args(training_args, data_args)
    data = prepare_data(model_args, data_args, training_args, checkpoint)
    if data_args.max_batch_seconds is not None and data.train is not None:
        check_fits(data.train.frame_source_lengths, round(data_args.max_batch_seconds * TARGET_SAMPLING_RATE))
    write_data_report(os.path.join(output_dir, DATA_REPORT_FILE), data)
    trainer = build_trainer(model_args, data_args, training_args, data, checkpoint)
    result = FinetuneResult(output_dir=output_dir)
    train_metrics: dict[str, float] = {}
    for split in data.evals.values() if data_args.eval_before_training else ():  # the starting point: shows the gain
        metrics = evaluate_split(trainer, split, output_dir, data_args.predictions_file, before_training=True)
        trainer.log_metrics(split_prefix(split, before_training=True), metrics)
        trainer.save_metrics(split_prefix(split, before_training=True), metrics)
        result.metrics.update(metrics)
        result.evals.append(eval_row(split, metrics, data_args, before_training=True))
    if training_args.do_train:
        if data.train is None:
            raise ValueError("--do_train needs --train_data")
        data.processor.save_pretrained(output_dir)
        train_metrics = dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
        if data.train.report.kept_seconds:  # known for eager splits, not for a stream
            seen = trainer.state.epoch * data.train.report.kept_seconds  # audio seconds the optimizer saw
            train_metrics["train_audio_seconds"] = round(seen, 1)
            train_metrics["train_audio_seconds_per_second"] = round(seen / max(train_metrics["train_runtime"], 1e-9), 2)
        if data.cache_seconds:
            train_metrics["train_cache_seconds"] = round(data.cache_seconds, 3)  # not in train_runtime
        trainer.save_model()
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
    result.metrics.update(train_metrics)
    for split in data.evals.values():
        metrics = evaluate_split(trainer, split, output_dir, data_args.predictions_file)
        trainer.log_metrics(split.name, metrics)
        trainer.save_metrics(split.name if split.name == "eval" else f"test_{split.name}", metrics)
        result.metrics.update(metrics)
        result.evals.append(eval_row(split, metrics, data_args))
    if trainer.is_world_process_zero():
        finish_folder(trainer, model_args, data_args, card_args, training_args, data, result, train_metrics)
        if push:
            repo = default_repo_id(output_dir, training_args.hub_model_id)
            result.hub_url = push_model_folder(
                output_dir, repo, token=training_args.hub_token, private=training_args.hub_private_repo
            )
    return result


def finish_folder(
    trainer: CTCTrainer,
    model_args: ModelArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    training_args: TrainingArguments,
    data: PreparedData,
    result: FinetuneResult,
    train_metrics: dict[str, float],
) -> None:
    """Curves PNG, model card and the list of files of the output folder."""
    out = str(training_args.output_dir)
    try:
        result.files["curves"] = plot_training_curves(trainer.state.log_history, os.path.join(out, CURVES_FILE))
    except ValueError as err:
        logger.warning("no training curves: %s", err)
    inputs = card_inputs(
        model_args,
        data_args,
        card_args,
        training_args,
        data,
        result.evals,
        train_metrics,
        describe_frozen_encoder(trainer.model),  # type: ignore[arg-type]  # a Wav2Vec2ForCTC
    )
    result.files["card"] = write_model_card(out, inputs, card_args.card_template)
    with open(os.path.join(out, "all_results.json"), "w", encoding="utf-8") as handle:
        json.dump(result.metrics, handle, indent=2, sort_keys=True)
    result.files.update({p.name: str(p) for p in Path(out).iterdir() if p.is_file()})
