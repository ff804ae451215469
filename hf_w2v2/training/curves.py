"""Training curves: train loss and eval WER/CER against the optimizer step, from ``trainer.state.log_history``."""

from __future__ import annotations

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


def plot_training_curves(
    log_history: Sequence[dict[str, Any]], path: str | os.PathLike, eval_prefix: str = "eval"
) -> str:
    """Save a two-panel PNG (train loss; eval WER and CER) and return its path.

    Raises:
        ValueError: the history has neither a training loss nor an eval metric to plot.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    loss = curve_points(log_history, "loss")
    eval_loss = curve_points(log_history, f"{eval_prefix}_loss")
    wer = curve_points(log_history, f"{eval_prefix}_wer")
    cer = curve_points(log_history, f"{eval_prefix}_cer")
    if not loss[0] and not wer[0]:
        raise ValueError("nothing to plot: the log history has no 'loss' and no eval WER entries")
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(*loss, label="train loss")
    if eval_loss[0]:
        ax_loss.plot(*eval_loss, "o-", label="eval loss")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("CTC loss")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_err.plot(*wer, "o-", label="eval WER")
    ax_err.plot(*cer, "s-", label="eval CER")
    ax_err.set_xlabel("optimizer step")
    ax_err.set_ylabel("error rate")
    ax_err.set_ylim(bottom=0)
    ax_err.legend()
    ax_err.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)
