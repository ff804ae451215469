"""What each evaluated set of a classification run gives (scores, reports, pictures).

* ``sequence``: accuracy, macro-F1, ``confusion_<set>.png``, ``report_<set>.txt`` (per class),
  ``predictions_<set>.tsv``;
* ``xvector``: the set's own speakers (unseen in training) make trials (``trials_<set>.txt``),
  scored by cosine (``scores_<set>.txt``): EER, minDCF, ``det_<set>.png``;
* ``frame``: frame precision / recall / F1 of the speech class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hf_w2v2.classify.data import ClipDataset
from hf_w2v2.classify.inference import run_batches
from hf_w2v2.classify.metrics import ClassificationMetrics, classification_report, plot_confusion_matrix
from hf_w2v2.classify.verification import (
    build_trials,
    cosine_scores,
    equal_error_rate,
    min_dcf,
    plot_det_curve,
    write_trials,
)
from hf_w2v2.training.lifecycle import evaluate_set
from hf_w2v2.training.model_card import EvalRow

EMBEDDING_BATCH = 16  # clips per forward pass when embedding a verification set


def skip_counts(dataset: ClipDataset) -> dict[str, int]:
    """Clips of a set left out of its scores (non-zero counts only)."""
    r = dataset.report
    counts = {
        "too_short": len(r.too_short),
        "unreadable": len(r.unreadable),
        "unseen_class": sum(r.unseen_labels.values()),
    }
    return {k: v for k, v in counts.items() if v}


def evaluate_classes(trainer: Any, name: str, dataset: ClipDataset, names: list[str], frame: bool) -> EvalRow:
    """Accuracy / macro-F1 (or frame F1) of one set; confusion PNG, per-class report and predictions."""
    out = str(trainer.args.output_dir)
    metrics_fn = ClassificationMetrics(names, frame=frame)
    prefix = "eval" if name == "eval" else f"test_{name}"
    output = evaluate_set(trainer, dataset, prefix, metrics_fn)
    metrics = dict(output.metrics or {})
    trainer.save_metrics(prefix, metrics)
    keys = ("frame_f1", "frame_precision", "frame_recall") if frame else ("accuracy", "macro_f1")
    row = EvalRow(name, len(dataset), {k: metrics[f"{prefix}_{k}"] for k in keys})
    if not frame and trainer.is_world_process_zero():
        matrix = metrics_fn.matrix(output)
        plot_confusion_matrix(matrix, names, os.path.join(out, f"confusion_{name}.png"), title=f"{name}: confusion")
        report = classification_report(matrix, names) + dataset.report.format() + "\n"
        Path(out, f"report_{name}.txt").write_text(report, encoding="utf-8")
        predicted = np.asarray(output.predictions).reshape(-1)
        lines = ["file\treference\tprediction\n"] + [
            f"{n}\t{names[int(r)]}\t{names[int(p)]}\n" for n, r, p in zip(dataset.names, dataset.labels, predicted)
        ]
        Path(out, f"predictions_{name}.tsv").write_text("".join(lines), encoding="utf-8")
    return row


def evaluate_verification(
    model: Any, name: str, dataset: ClipDataset, speakers: list[str], trials_per_kind: int, p_target: float, out: str
) -> tuple[EvalRow, dict[str, Any]]:
    """EER / minDCF of cosine-scored trials among the set's own speakers; trials file and DET PNG."""
    embeddings = run_batches(model, dataset.audio, batch_size=EMBEDDING_BATCH, output="embeddings", show_progress=True)
    clip_speakers = [speakers[label] for label in dataset.labels]
    trials = build_trials(dataset.names, clip_speakers, trials_per_kind, seed=0)
    write_trials(trials, os.path.join(out, f"trials_{name}.txt"))
    scores = cosine_scores(embeddings, {n: i for i, n in enumerate(dataset.names)}, trials)
    targets = np.array([t.target for t in trials])
    np.savetxt(os.path.join(out, f"scores_{name}.txt"), scores, fmt="%.6f")  # one per line of trials_<set>.txt
    eer, threshold = equal_error_rate(scores, targets)
    dcf, _ = min_dcf(scores, targets, p_target)
    plot_det_curve({name: (scores, targets)}, os.path.join(out, f"det_{name}.png"))
    detail = {
        "set": name,
        "eer": eer,
        "threshold": threshold,
        "min_dcf": dcf,
        "p_target": p_target,
        "target_trials": int(targets.sum()),
        "nontarget_trials": int((~targets).sum()),
        "speakers": sorted(set(clip_speakers)),
    }
    notes = f"{len(set(clip_speakers))} unseen speakers, {int(targets.sum())}+{int((~targets).sum())} trials"
    return EvalRow(name, len(dataset), {"eer": eer, "min_dcf": dcf}, notes=notes), detail
