"""Classification metrics: accuracy, macro-F1, the confusion matrix (as numbers and a PNG), a per-class report.

Shape legend: N items, L classes.

Pure numpy; the Trainer hook is :class:`ClassificationMetrics`. Macro-F1 averages the per-class
F1 over the classes that occur in the references or the predictions (a class never seen in
either does not count), as ``sklearn.metrics.f1_score(average="macro")`` does over its labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def confusion_matrix(references: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    """(L, L) counts: row = reference class, column = predicted class."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(references, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support (reference count) of one class."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


def per_class_scores(matrix: np.ndarray, names: Sequence[str]) -> list[ClassScores]:
    """Precision/recall/F1 per class from a confusion matrix (0 where undefined)."""
    hits = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(hits), where=denom > 0)
    return [
        ClassScores(str(n), float(p), float(r), float(f), int(s))
        for n, p, r, f, s in zip(names, precision, recall, f1, support)
    ]


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes present in the references or the predictions."""
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    scores = per_class_scores(matrix, [str(i) for i in range(matrix.shape[0])])
    values = [s.f1 for s, keep in zip(scores, present) if keep]
    return float(np.mean(values)) if values else 0.0


def classification_report(matrix: np.ndarray, names: Sequence[str]) -> str:
    """A text table of precision / recall / F1 / support per class, then accuracy and macro-F1."""
    width = max([len(str(n)) for n in names] + [9])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for s in per_class_scores(matrix, names):
        lines.append(f"{s.name:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}  {s.support:7d}")
    total = int(matrix.sum())
    accuracy = float(np.trace(matrix) / total) if total else 0.0
    lines.append(f"{'accuracy':<{width}}  {accuracy:9.4f}  ({int(np.trace(matrix))}/{total})")
    lines.append(f"{'macro-F1':<{width}}  {macro_f1(matrix):9.4f}")
    return "\n".join(lines) + "\n"


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | os.PathLike, title: str = "") -> str:
    """Save the confusion matrix as a PNG (counts in the cells, rows normalised for the colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), [str(x) for x in names], rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), [str(x) for x in names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if n <= 40:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    colour = "white" if shares[i, j] > 0.5 else "black"
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_title(title or f"confusion matrix ({int(matrix.sum())} clips)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)


def frame_f1(references: np.ndarray, predictions: np.ndarray, positive: int = 1) -> dict[str, float]:
    """Precision, recall and F1 of class ``positive`` over frames (e.g. speech in voice-activity detection).

    ``references``/``predictions`` are integer frame labels of any (equal) shape; entries < 0 are ignored.
    """
    ref, hyp = np.asarray(references).reshape(-1), np.asarray(predictions).reshape(-1)
    keep = ref >= 0
    ref, hyp = ref[keep], hyp[keep]
    tp = int(((ref == positive) & (hyp == positive)).sum())
    fp = int(((ref != positive) & (hyp == positive)).sum())
    fn = int(((ref == positive) & (hyp != positive)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float((ref == hyp).mean()) if ref.size else 0.0
    return {"frame_precision": precision, "frame_recall": recall, "frame_f1": f1, "frame_accuracy": accuracy}


@dataclass(frozen=True)
class ClassificationMetrics:
    """``compute_metrics`` for the Trainer: accuracy and macro-F1; :meth:`matrix` gives the confusion matrix.

    Takes argmax predictions (:func:`hf_w2v2.training.trainer.argmax_logits`). For frame tasks
    (``frame=True``) the labels are (N, F, L) one-hot and the scores are frame precision/recall/F1 of class 1.
    """

    names: Sequence[str]
    frame: bool = False

    def matrix(self, prediction: Any) -> np.ndarray:
        """(L, L) confusion counts of an evaluation's argmax predictions and labels."""
        labels, predictions = np.asarray(prediction.label_ids), np.asarray(prediction.predictions)
        return confusion_matrix(labels.reshape(-1), predictions.reshape(-1), len(self.names))

    def __call__(self, prediction: Any) -> dict[str, float]:
        if self.frame:
            references = np.asarray(prediction.label_ids).argmax(axis=-1)  # (N, F, L) one-hot -> (N, F)
            return frame_f1(references, np.asarray(prediction.predictions))
        matrix = self.matrix(prediction)
        total = max(int(matrix.sum()), 1)
        return {"accuracy": float(np.trace(matrix) / total), "macro_f1": macro_f1(matrix)}
