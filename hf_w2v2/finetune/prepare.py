"""The data side of a CTC fine-tuning run: corpora read, vocabulary chosen, coverage reported,
datasets built and filtered (eagerly, lazily or as a stream), and the data report written."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import TrainingArguments

from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.finetune.arguments import CTCModelArguments, DataArguments
from hf_w2v2.finetune.data import PreparedData, choose_processor, prepare_split, read_utterances
from hf_w2v2.finetune.resume import check_resume_vocabulary
from hf_w2v2.finetune.stream import stream_shards, stream_split
from hf_w2v2.text.coverage import coverage_report
from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.training.arguments import base_config

logger = logging.getLogger(__name__)


def prepare_data(
    model_args: CTCModelArguments, data_args: DataArguments, training_args: TrainingArguments, checkpoint: str | None
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
    train_filter = CTCFilter(
        normalizer,
        min_duration=data_args.min_duration,
        max_duration=data_args.max_duration,
        drop_oov=data_args.drop_oov,
    )
    train = (
        stream_split(shards, processor, config, train_filter, data_args, training_args)
        if shards
        else prepare_split(
            "train", train_utts, processor, config, train_filter, workers, lazy=data_args.train_loading == "lazy"
        )
        if train_utts and training_args.do_train
        else None
    )
    evals = {
        name: prepare_split(name, utts, processor, config, CTCFilter(normalizer), workers)
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
