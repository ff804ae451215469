"""Training curves: train loss and eval metrics (WER/CER for CTC) against the optimizer step, from
``trainer.state.log_history``."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

CURVES_FILE = "training_curves.png"
"""Name of the curves PNG in a run's output folder."""
DATA_REPORT_FILE = "data_report.txt"
"""Name of the data report (what was kept and dropped) in a run's output folder."""


def curve_points(log_history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of every log entry holding ``key``."""
    points = [(int(e["step"]), float(e[key])) for e in log_history if key in e and "step" in e]
    return [s for s, _ in points], [v for _, v in points]


CTC_METRICS = (("wer", "eval WER"), ("cer", "eval CER"))
"""Eval metrics of CTC fine-tuning plotted by default: (log key without the prefix, legend)."""


def plot_training_curves(
    log_history: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    eval_prefix: str = "eval",
    loss_name: str = "CTC loss",
    metrics: Sequence[tuple[str, str]] = CTC_METRICS,
    metric_axis: str = "error rate",
) -> str:
    """Save a PNG of the train (and eval) loss and, when logged, the eval ``metrics``; return its path.

    The metric panel is left out when no metric was logged (a run without evaluation during training).

    Raises:
        ValueError: the history has neither a training loss nor an eval metric to plot.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    loss = curve_points(log_history, "loss")
    eval_loss = curve_points(log_history, f"{eval_prefix}_loss")
    curves = [(curve_points(log_history, f"{eval_prefix}_{key}"), label) for key, label in metrics]
    curves = [(points, label) for points, label in curves if points[0]]
    if not loss[0] and not curves:
        names = ", ".join(f"{eval_prefix}_{key}" for key, _ in metrics)
        raise ValueError(f"nothing to plot: the log history has no 'loss' and none of {names}")
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(10 if curves else 5, 4), squeeze=False)
    ax_loss = axes[0][0]
    ax_loss.plot(*loss, label="train loss")
    if eval_loss[0]:
        ax_loss.plot(*eval_loss, "o-", label="eval loss")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel(loss_name)
    ax_loss.set_yscale("log")
    ax_loss.legend()
    if curves:
        ax_metric = axes[0][1]
        for (points, label), marker in zip(curves, itertools.cycle("os^v")):
            ax_metric.plot(*points, f"{marker}-", label=label)
        ax_metric.set_xlabel("optimizer step")
        ax_metric.set_ylabel(metric_axis)
        highest = max(max(points[1]) for points, _ in curves)
        ax_metric.set_ylim(0, highest * 1.08 if highest > 0 else 1.0)  # a score of 0.99 sat on the frame
        ax_metric.set_xlim(ax_loss.get_xlim())  # the loss's step axis: one final evaluation sits at the run's end
        ax_metric.legend()
        ax_metric.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)
