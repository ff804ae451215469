"""The curves PNG names the run's own loss and metrics, and leaves out a metric panel with nothing in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from hf_w2v2.training.curves import plot_training_curves

HISTORY = [{"step": s, "loss": 1.0 / s} for s in range(1, 6)]


def _width(path: str) -> int:
    with Image.open(path) as image:
        return image.size[0]


def test_metric_panel_only_when_metrics_were_logged(tmp_path: Path) -> None:
    metrics = (("accuracy", "eval accuracy"),)
    alone = plot_training_curves(HISTORY, tmp_path / "a.png", loss_name="cross-entropy loss", metrics=metrics)
    evaluated = HISTORY + [{"step": 5, "eval_accuracy": 0.9, "eval_loss": 0.3}]
    both = plot_training_curves(evaluated, tmp_path / "b.png", loss_name="cross-entropy loss", metrics=metrics)
    assert _width(alone) == 500 and _width(both) == 1000  # one panel (5 in) vs two (10 in) at 100 dpi


def test_ctc_defaults_and_an_empty_history(tmp_path: Path) -> None:
    ctc = HISTORY + [{"step": 5, "eval_wer": 0.5, "eval_cer": 0.2}]
    assert _width(plot_training_curves(ctc, tmp_path / "c.png")) == 1000
    with pytest.raises(ValueError, match="eval_accuracy"):
        plot_training_curves([{"step": 1}], tmp_path / "d.png", metrics=(("accuracy", "eval accuracy"),))


def test_one_final_score_is_inside_the_panel_on_the_loss_step_axis(tmp_path: Path, monkeypatch) -> None:
    """The shipped classifier's picture: a lone 0.993 accuracy sat on the frame, on an axis of its own."""
    from matplotlib.figure import Figure

    figures: list[Figure] = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figures.append(self), save(self, *a, **k))[1])
    history = [{"step": s, "loss": 1.0 / s} for s in range(100, 3001, 100)]
    history += [{"step": 3020, "eval_accuracy": 0.993, "eval_loss": 0.03}]
    plot_training_curves(history, tmp_path / "e.png", loss_name="cross-entropy loss", metrics=(("accuracy", "acc"),))
    loss_axis, metric_axis = figures[0].axes
    assert loss_axis.get_ylabel() == "cross-entropy loss"
    assert metric_axis.get_ylim()[1] > 0.993 * 1.05 and metric_axis.get_xlim() == loss_axis.get_xlim()
