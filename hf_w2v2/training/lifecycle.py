"""One run skeleton for every job: start, evaluate a set, finish.

A job's ``run_*`` reads its data, builds its model and trainer, and calls, in order:

- :func:`start_run`: copies ``TrainingArguments`` once (the run never mutates what it was handed),
  checks and creates the output folder, seeds, finds the checkpoint to resume from, and turns the
  Trainer's push at every save off (the finished folder is pushed once, by :func:`finish_run`);
- :func:`evaluate_set` per evaluated set: predictions, labels and metrics come back as the return
  value; the trainer's own ``compute_metrics`` (used by evaluations during training) is always put back;
- :func:`record_metrics` per metrics group (``train``, ``eval``, ``test_<name>``): logged, saved as
  ``<group>_results.json`` and added to the run's result;
- :func:`finish_run`: training curves, the model card (the job writes it; the health monitor's
  warnings go into it), ``all_results.json`` (with ``health_warnings``), the file list, the Hub push.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainingArguments, set_seed
from transformers.trainer_utils import PredictionOutput

from hf_w2v2.training.budget import budget_schedule
from hf_w2v2.training.checkpoints import latest_complete_checkpoint, resolve_checkpoint
from hf_w2v2.training.curves import CTC_METRICS, CURVES_FILE, plot_training_curves
from hf_w2v2.training.hub import default_repo_id, push_model_folder
from hf_w2v2.training.process_exit import close_process_group
from hf_w2v2.training.run_lock import LOCK_FILE, RunLock, acquire_run_lock

logger = logging.getLogger(__name__)

RESULTS_FILE = "all_results.json"
HEALTH_KEY = "health_warnings"  # in all_results.json: what the health monitor warned about


@dataclass
class RunResult:
    """What a run produced: its metrics, the card's evaluation rows, the folder's files, the Hub commit."""

    output_dir: str
    metrics: dict[str, float] = field(default_factory=dict)
    rows: list[Any] = field(default_factory=list)  # the job's evaluation rows, as its card shows them
    files: dict[str, str] = field(default_factory=dict)
    health_warnings: list[str] = field(default_factory=list)
    hub_url: str | None = None
    resumed_from: str | None = None


@dataclass
class RunStart:
    """The run's own settings: a copy of the ``TrainingArguments`` it was handed, and what :func:`start_run` found."""

    args: TrainingArguments
    output_dir: str
    checkpoint: str | None  # the checkpoint training resumes from
    push: bool  # push the finished folder to the Hub (the Trainer's own push at every save is off)
    lock: RunLock  # this run's hold on the output folder, released by :func:`finish_run`


@dataclass
class Curves:
    """What the training-curves PNG plots (:func:`hf_w2v2.training.curves.plot_training_curves`)."""

    loss_name: str = "CTC loss"
    metrics: Sequence[tuple[str, str]] | None = None  # None: the CTC metrics
    metric_axis: str = "error rate"


def resume_point(args: TrainingArguments, auto_resume: bool = False) -> str | None:
    """``--resume_from_checkpoint`` (``latest`` or a folder), else with ``auto_resume`` the newest complete
    checkpoint of the output folder, else None."""
    output_dir = str(args.output_dir or "")
    if args.resume_from_checkpoint is not None:
        return resolve_checkpoint(args.resume_from_checkpoint, output_dir)
    if not auto_resume:
        return None
    last, skipped = latest_complete_checkpoint(output_dir)
    for line in skipped:
        logger.warning("auto_resume: skipped %s", line)
    return last


def start_run(
    training_args: TrainingArguments,
    trains: bool = True,
    auto_resume: bool = False,
    labelled: bool = False,
    max_train_minutes: float | None = None,
) -> RunStart:
    """The run's copy of ``training_args``, its output folder created, seeded, and its resume point.

    ``labelled``: batches carry ``labels`` and the datasets' extra columns (lengths, cache keys) stay;
    ``max_train_minutes``: a learning-rate schedule the time budget cannot run is refused now, before any
    data work, not at step 1.
    """
    args = copy.deepcopy(training_args)  # the one copy: everything below sets the run's own
    if labelled:
        args.remove_unused_columns, args.label_names = False, ["labels"]
    if max_train_minutes is not None:
        budget_schedule(args)
    if not args.output_dir:
        raise ValueError("--output_dir is required: the folder the model, card and results are written to")
    output_dir = str(args.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    lock = acquire_run_lock(output_dir)  # one run per output folder: a second run fails here, naming this one
    atexit.unregister(close_process_group)  # one entry however many runs this process makes
    atexit.register(close_process_group)
    set_seed(args.seed)
    checkpoint = resume_point(args, auto_resume) if trains else None
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    push, args.push_to_hub = args.push_to_hub, False
    return RunStart(args=args, output_dir=output_dir, checkpoint=checkpoint, push=push, lock=lock)


def evaluate_set(
    trainer: Trainer, dataset: Any, prefix: str, compute_metrics: Callable[[Any], dict[str, float]] | None
) -> PredictionOutput:
    """Predictions, labels and ``{prefix}_*`` metrics of ``dataset`` scored by ``compute_metrics``; logged
    like an evaluation. The trainer's own ``compute_metrics`` is restored, even when this one fails."""
    during_training, trainer.compute_metrics = trainer.compute_metrics, compute_metrics
    try:
        output = trainer.predict(dataset, metric_key_prefix=prefix)
    finally:
        trainer.compute_metrics = during_training
    trainer.log(dict(output.metrics or {}))
    return output


def record_metrics(trainer: Trainer, group: str, metrics: dict[str, float], result: RunResult) -> None:
    """Log ``metrics``, save them as ``<group>_results.json`` and add them to ``result``."""
    trainer.log_metrics(group, metrics)
    trainer.save_metrics(group, metrics)
    result.metrics.update(metrics)


def health_paragraph(warnings: Sequence[str]) -> str:
    """The card's lines on what the health monitor warned about (empty when nothing)."""
    if not warnings:
        return ""
    return "\n\nTraining health warnings (hf_w2v2.training.health):\n\n" + "\n".join(f"- {w}" for w in warnings)


def finish_run(
    trainer: Any,
    run: RunStart,
    result: RunResult,
    write_card: Callable[[RunResult], str],
    curves: Curves | None = None,
    commit_message: str = "hf_w2v2 training",
) -> RunResult:
    """Curves PNG, model card, ``all_results.json``, the folder's file list and the Hub push (main process);
    then the output folder's lock is released."""
    try:
        if trainer.is_world_process_zero():
            _write_folder(trainer, run, result, write_card, curves or Curves(), commit_message)
    finally:
        run.lock.release()
    return result


def _write_folder(
    trainer: Any,
    run: RunStart,
    result: RunResult,
    write_card: Callable[[RunResult], str],
    curves: Curves,
    commit_message: str,
) -> None:
    """What :func:`finish_run` writes and pushes (the main process only)."""
    out = run.output_dir
    result.health_warnings = trainer.health_warnings()
    try:
        result.files["curves"] = plot_training_curves(
            trainer.state.log_history,
            os.path.join(out, CURVES_FILE),
            loss_name=curves.loss_name,
            metrics=CTC_METRICS if curves.metrics is None else curves.metrics,
            metric_axis=curves.metric_axis,
        )
    except ValueError as err:
        logger.warning("no training curves: %s", err)
    result.files["card"] = write_card(result)
    with open(os.path.join(out, RESULTS_FILE), "w", encoding="utf-8") as handle:
        json.dump({**result.metrics, HEALTH_KEY: result.health_warnings}, handle, indent=2, sort_keys=True)
    result.files.update({p.name: str(p) for p in Path(out).iterdir() if p.is_file() and p.name != LOCK_FILE})
    if run.push:
        repo = default_repo_id(out, run.args.hub_model_id)
        token, private = run.args.hub_token, run.args.hub_private_repo
        result.hub_url = push_model_folder(out, repo, token=token, private=private, commit_message=commit_message)
