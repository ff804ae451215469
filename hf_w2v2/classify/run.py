"""``run_classification``: the whole classification / x-vector / frame job, called by
``examples/finetune_classification.py``.

Data (label column) -> model with a head sized to the classes -> Trainer (time budget, balanced
sampling or class weights) -> evaluation of every set -> standard output folder (safetensors
weights, config with ``id2label``, feature extractor, ``*_results.json``, per-set reports and
PNGs, ``training_curves.png``, ``README.md`` card) -> optional push to the Hub. The folder loads
in stock transformers (``AutoModelForAudioClassification``, ``pipeline("audio-classification")``).

Per task, what each evaluated set gives:

* ``sequence``: accuracy, macro-F1, ``confusion_<set>.png``, ``report_<set>.txt`` (per class),
  ``predictions_<set>.tsv``;
* ``xvector``: the set's own speakers (unseen in training) make trials (``trials_<set>.txt``),
  scored by cosine (``scores_<set>.txt``): EER, minDCF, ``det_<set>.png``; the first set's EER threshold goes to
  ``verification.json`` (``hf-w2v2 verify`` decides with it);
* ``frame``: frame precision / recall / F1 of the speech class.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainingArguments, Wav2Vec2FeatureExtractor, set_seed

from hf_w2v2.classify.arguments import ClassifyDataArguments
from hf_w2v2.classify.card import ClassifyCardInputs, ResultRow, write_card
from hf_w2v2.classify.data import (
    FRAME_LABELS,
    ClassificationCollator,
    ClipDataset,
    LabeledClip,
    label_names,
    load_clips,
    load_frame_clips,
    read_labeled,
)
from hf_w2v2.classify.feature_memo import memoize_frozen_encoder, release
from hf_w2v2.classify.inference import VERIFICATION_FILE, min_samples_for, run_batches, uses_attention_mask
from hf_w2v2.classify.metrics import ClassificationMetrics, argmax_logits, classification_report, plot_confusion_matrix
from hf_w2v2.classify.model import build_classifier
from hf_w2v2.classify.trainer import ClassificationTrainer, inverse_frequency
from hf_w2v2.classify.verification import (
    build_trials,
    cosine_scores,
    equal_error_rate,
    min_dcf,
    plot_det_curve,
    write_trials,
)
from hf_w2v2.finetune.arguments import CardArguments, ModelArguments, corpus_name
from hf_w2v2.finetune.model import count_parameters, describe_frozen_encoder
from hf_w2v2.finetune.run import base_config
from hf_w2v2.models.lengths import conv_output_length
from hf_w2v2.training.budget import budget_for_run, budget_schedule
from hf_w2v2.training.checkpoints import resolve_checkpoint
from hf_w2v2.training.curves import CURVES_FILE, DATA_REPORT_FILE, plot_training_curves
from hf_w2v2.training.hub import default_repo_id, push_model_folder
from hf_w2v2.training.model_card import training_hyperparameters

logger = logging.getLogger(__name__)


@dataclass
class ClassifyResult:
    """What a run produced."""

    output_dir: str
    metrics: dict[str, float] = field(default_factory=dict)
    rows: list[ResultRow] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    hub_url: str | None = None


@dataclass
class Sets:
    names: list[str]  # class names (speakers for xvector, FRAME_LABELS for frame)
    train: ClipDataset | None
    evals: dict[str, ClipDataset]
    eval_labels: dict[str, list[str]]  # per eval set, its own class names (xvector: its speakers)


def read_all(data_args: ClassifyDataArguments) -> tuple[list[LabeledClip], dict[str, list[LabeledClip]]]:
    frame = data_args.task == "frame"
    read = lambda src: read_labeled(src, data_args.label_column, data_args.audio_column, allow_empty=frame)
    train = read(data_args.train_data)[: data_args.max_train_samples] if data_args.train_data else []
    evals = {name: read(path)[: data_args.max_eval_samples] for name, path in data_args.named_eval_sets()}
    return train, evals


def class_names(train: list[LabeledClip], model_args: ModelArguments, data_args: ClassifyDataArguments) -> list[str]:
    """Frame task: non-speech/speech; else the training labels, or (evaluation only) the model's own."""
    if data_args.task == "frame":
        return list(FRAME_LABELS)
    if train:
        return label_names(train, corpus_name(data_args.train_data or ""), data_args.label_column)
    id2label: Any = base_config(model_args).id2label
    return [str(id2label[i]) for i in range(len(id2label))]


def load_sets(model_args: ModelArguments, data_args: ClassifyDataArguments, training_args: TrainingArguments) -> Sets:
    """Decode the training and evaluation clips; every skip is counted in the datasets' reports."""
    train_clips, eval_clips = read_all(data_args)
    if training_args.do_train and not train_clips:
        raise ValueError("--do_train needs --train_data")
    names = class_names(train_clips, model_args, data_args)
    config = base_config(model_args)
    field_ = min_samples_for(config, "sequence")
    pad = min_samples_for(config, data_args.task) if data_args.task == "xvector" else 0
    workers, progress = data_args.preprocessing_num_workers, not training_args.disable_tqdm
    if data_args.task == "frame":
        frames = lambda n: int(conv_output_length(n, config.conv_kernel, config.conv_stride))
        hop = int(np.prod(config.conv_stride))
        load = lambda name, clips, _ids: load_frame_clips(name, clips, field_, frames, hop, workers, progress)
    else:
        load = lambda name, clips, ids: load_clips(
            name, clips, ids, field_, data_args.max_seconds, workers, progress, pad_to_samples=pad
        )
    ids = {n: i for i, n in enumerate(names)}
    train = load("train", train_clips, ids) if train_clips and training_args.do_train else None
    evals, eval_labels = {}, {}
    for name, clips in eval_clips.items():
        own = label_names(clips, name, data_args.label_column) if data_args.task == "xvector" else names
        evals[name] = load(name, clips, {n: i for i, n in enumerate(own)})
        eval_labels[name] = own
    return Sets(names, train, evals, eval_labels)


def prepare_training_args(args: TrainingArguments, data_args: ClassifyDataArguments) -> TrainingArguments:
    args.remove_unused_columns = False
    args.label_names = ["labels"]
    if data_args.task == "xvector":  # eval speakers are not training classes: no in-training eval loss
        args.eval_strategy = "no"
    if data_args.max_train_minutes is not None:
        budget_schedule(args)
    return args


def build_trainer(
    model_args: ModelArguments,
    data_args: ClassifyDataArguments,
    training_args: TrainingArguments,
    sets: Sets,
    checkpoint: str | None,
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
    total, trainable = count_parameters(model)
    logger.info("model: %.2f M parameters, %.2f M trainable", total / 1e6, trainable / 1e6)
    weights = None
    if data_args.balance == "weights" and sets.train is not None:
        weights = inverse_frequency(sets.train.labels, len(sets.names))
    in_training_eval = sets.evals.get("eval") if data_args.task != "xvector" else None
    bucket = data_args.bucket_seconds or (0.25 if model_args.cache_frozen_features else None)
    bucket_samples = None if bucket is None else int(bucket * 16_000)
    return ClassificationTrainer(
        model=model,
        args=training_args,
        train_dataset=sets.train,
        eval_dataset=in_training_eval,
        data_collator=ClassificationCollator(uses_attention_mask(model.config), bucket_samples),
        compute_metrics=ClassificationMetrics(sets.names, frame=data_args.task == "frame"),
        preprocess_logits_for_metrics=argmax_logits,
        time_budget=budget_for_run(data_args.max_train_minutes, checkpoint),
        balanced_sampling=data_args.balance == "sampler",
        class_weights=weights,
        bucket_samples=bucket_samples,
    )


def evaluate_classes(
    trainer: ClassificationTrainer, name: str, dataset: ClipDataset, names: list[str], frame: bool
) -> ResultRow:
    """Accuracy / macro-F1 (or frame F1) of one set; confusion PNG, per-class report and predictions."""
    out = str(trainer.args.output_dir)
    metrics_fn = ClassificationMetrics(names, frame=frame)
    trainer.compute_metrics = metrics_fn
    prefix = "eval" if name == "eval" else f"test_{name}"
    metrics = trainer.evaluate(eval_dataset=dataset, metric_key_prefix=prefix)
    trainer.save_metrics(prefix, metrics)
    keys = ("frame_f1", "frame_precision", "frame_recall") if metrics_fn.frame else ("accuracy", "macro_f1")
    row = ResultRow(name, len(dataset), {k: metrics[f"{prefix}_{k}"] for k in keys})
    if metrics_fn.last_matrix is not None and trainer.is_world_process_zero():
        matrix = metrics_fn.last_matrix
        plot_confusion_matrix(matrix, names, os.path.join(out, f"confusion_{name}.png"), title=f"{name}: confusion")
        report = classification_report(matrix, names) + dataset.report.format() + "\n"
        Path(out, f"report_{name}.txt").write_text(report, encoding="utf-8")
        predicted = np.asarray(metrics_fn.last_predictions).reshape(-1)
        lines = ["file\treference\tprediction\n"] + [
            f"{n}\t{names[int(r)]}\t{names[int(p)]}\n" for n, r, p in zip(dataset.names, dataset.labels, predicted)
        ]
        Path(out, f"predictions_{name}.tsv").write_text("".join(lines), encoding="utf-8")
    return row


def evaluate_verification(
    model: Any, name: str, dataset: ClipDataset, speakers: list[str], data_args: ClassifyDataArguments, out: str
) -> tuple[ResultRow, dict[str, Any]]:
    """EER / minDCF of cosine-scored trials among the set's own speakers; trials file and DET PNG."""
    embeddings = run_batches(model, dataset.audio, batch_size=16, output="embeddings", show_progress=True)
    clip_speakers = [speakers[label] for label in dataset.labels]
    trials = build_trials(dataset.names, clip_speakers, data_args.trials_per_kind, seed=0)
    write_trials(trials, os.path.join(out, f"trials_{name}.txt"))
    scores = cosine_scores(embeddings, {n: i for i, n in enumerate(dataset.names)}, trials)
    targets = np.array([t.target for t in trials])
    np.savetxt(os.path.join(out, f"scores_{name}.txt"), scores, fmt="%.6f")  # one per line of trials_<set>.txt
    eer, threshold = equal_error_rate(scores, targets)
    dcf, _ = min_dcf(scores, targets, data_args.p_target)
    plot_det_curve({name: (scores, targets)}, os.path.join(out, f"det_{name}.png"))
    metrics = {"eer": eer, "min_dcf": dcf}
    detail = {
        "set": name,
        "eer": eer,
        "threshold": threshold,
        "min_dcf": dcf,
        "p_target": data_args.p_target,
        "target_trials": int(targets.sum()),
        "nontarget_trials": int((~targets).sum()),
        "speakers": sorted(set(clip_speakers)),
    }
    notes = f"{len(set(clip_speakers))} unseen speakers, {int(targets.sum())}+{int((~targets).sum())} trials"
    return ResultRow(name, len(dataset), metrics, notes), detail


def run_classification(
    model_args: ModelArguments,
    data_args: ClassifyDataArguments,
    card_args: CardArguments,
    training_args: TrainingArguments,
) -> ClassifyResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    set_seed(training_args.seed)
    out = str(training_args.output_dir)
    os.makedirs(out, exist_ok=True)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, out) if training_args.do_train else None
    push, training_args.push_to_hub = training_args.push_to_hub, False
    training_args = prepare_training_args(training_args, data_args)
    sets = load_sets(model_args, data_args, training_args)
    reports = ([sets.train.report] if sets.train else []) + [d.report for d in sets.evals.values()]
    Path(out, DATA_REPORT_FILE).write_text("\n".join(r.format() for r in reports) + "\n", encoding="utf-8")
    trainer = build_trainer(model_args, data_args, training_args, sets, checkpoint)
    result = ClassifyResult(output_dir=out)
    if training_args.do_train:
        memo = memoize_frozen_encoder(trainer.model) if model_args.cache_frozen_features else None
        train_metrics = dict(trainer.train(resume_from_checkpoint=checkpoint).metrics)
        if memo is not None:
            logger.info(
                "frozen feature encoder: %d rows computed, %d reused (%.2f GB)",
                memo.misses,
                memo.hits,
                memo.nbytes / 1e9,
            )
            train_metrics["train_feature_memo_hits"] = memo.hits
            train_metrics["train_feature_memo_misses"] = memo.misses
        release(memo)
        trainer.save_model()
        model: Any = trainer.model
        feature_extractor(model.config).save_pretrained(out)
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
        result.metrics.update(train_metrics)
    details = []
    for name, dataset in sets.evals.items():
        if data_args.task == "xvector":
            row, detail = evaluate_verification(trainer.model, name, dataset, sets.eval_labels[name], data_args, out)
            details.append(detail)
        else:
            row = evaluate_classes(trainer, name, dataset, sets.names, data_args.task == "frame")
        row.metrics.update({f"skipped_{k}": v for k, v in skip_counts(dataset).items()})
        result.rows.append(row)
        result.metrics.update({f"{name}_{k}": v for k, v in row.metrics.items()})
    if details:
        Path(out, VERIFICATION_FILE).write_text(json.dumps({**details[0], "all_sets": details}, indent=2) + "\n")
    if trainer.is_world_process_zero():
        finish_folder(trainer, model_args, data_args, card_args, training_args, sets, result)
        if push:
            repo = default_repo_id(out, training_args.hub_model_id)
            result.hub_url = push_model_folder(
                out,
                repo,
                token=training_args.hub_token,
                private=training_args.hub_private_repo,
                commit_message=f"hf_w2v2 {data_args.task} fine-tuning",
            )
    return result


def skip_counts(dataset: ClipDataset) -> dict[str, int]:
    """Clips of a set left out of its scores (non-zero counts only)."""
    r = dataset.report
    counts = {
        "too_short": len(r.too_short),
        "unreadable": len(r.unreadable),
        "unseen_class": sum(r.unseen_labels.values()),
    }
    return {k: v for k, v in counts.items() if v}


def feature_extractor(config: Any) -> Wav2Vec2FeatureExtractor:
    """The preprocessing the model was trained with (16 kHz, per-clip normalisation, mask for layer norm)."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=uses_attention_mask(config),
    )


USAGE = {
    "sequence": "```bash\nhf-w2v2 classify {path} clip.wav --top-k 3\n```\n\n```python\nfrom transformers import "
    'pipeline\n\nclassifier = pipeline("audio-classification", model="{path}")\nprint(classifier("clip.wav"))\n```',
    "xvector": "```bash\nhf-w2v2 verify {path} a.wav b.wav     # score and same/different at the stored EER "
    "threshold\nhf-w2v2 embed {path} clips/ --output embeddings.npz\n```",
    "frame": "```python\nfrom transformers import AutoModelForAudioFrameClassification\n\nmodel = "
    'AutoModelForAudioFrameClassification.from_pretrained("{path}")  # logits (B, frames, 2), 20 ms frames\n```',
}


CURVES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sequence": ("cross-entropy loss", (("accuracy", "eval accuracy"), ("macro_f1", "eval macro-F1"))),
    "frame": ("cross-entropy loss", (("frame_f1", "eval frame F1"), ("frame_accuracy", "eval frame accuracy"))),
    "xvector": ("margin-softmax loss", ()),  # evaluated by EER after training, not during it
}
"""Per task, the training loss the curves PNG names and the eval metrics it plots when the run evaluates."""


def finish_folder(
    trainer: ClassificationTrainer,
    model_args: ModelArguments,
    data_args: ClassifyDataArguments,
    card_args: CardArguments,
    training_args: TrainingArguments,
    sets: Sets,
    result: ClassifyResult,
) -> None:
    """Curves PNG, model card, ``all_results.json`` and the list of files of the output folder."""
    out = str(training_args.output_dir)
    loss_name, metrics = CURVES[data_args.task]
    try:
        result.files["curves"] = plot_training_curves(
            trainer.state.log_history,
            os.path.join(out, CURVES_FILE),
            loss_name=loss_name,
            metrics=metrics,
            metric_axis="score",
        )
    except ValueError as err:
        logger.warning("no training curves: %s", err)
    init = model_args.model_name_or_path or f"random initialisation ({model_args.config_name} config)"
    train = sets.train.report if sets.train else None
    data_lines = [f"- Training corpus: `{corpus_name(data_args.train_data)}`" if data_args.train_data else "- none"]
    if train is not None:
        data_lines.append(f"- {train.format()}")
    data_lines.append(f"- {len(sets.names)} classes: {', '.join(sets.names[:40])}")
    data_lines += [f"- {d.report.format()}" for d in sets.evals.values()]
    extra = {
        "task": data_args.task,
        "init": init,
        "feature_encoder": describe_frozen_encoder(trainer.model),  # type: ignore[arg-type]
        "balance": data_args.balance,
        "max_train_minutes": data_args.max_train_minutes,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0)),
        **model_args.overrides(),
    }
    name = card_args.model_name or Path(out).resolve().name
    inputs = ClassifyCardInputs(
        name=name,
        task=data_args.task,
        summary=f"A wav2vec 2.0 {data_args.task} model fine-tuned from {init} with hf_w2v2 "
        f"(`examples/finetune_classification.py`).",
        rows=result.rows,
        data="\n".join(data_lines),
        hyperparameters=training_hyperparameters(
            training_args, extra, trainer.state.epoch if training_args.do_train else None
        ),
        usage=USAGE[data_args.task].replace("{path}", name),
        license=card_args.license,
        language=card_args.language,
        datasets=[card_args.dataset_name or corpus_name(data_args.train_data)] if data_args.train_data else [],
        limitations=card_args.limitations or ClassifyCardInputs.limitations,
    )
    result.files["card"] = write_card(out, inputs)
    with open(os.path.join(out, "all_results.json"), "w", encoding="utf-8") as handle:
        json.dump(result.metrics, handle, indent=2, sort_keys=True)
    result.files.update({p.name: str(p) for p in Path(out).iterdir() if p.is_file()})
