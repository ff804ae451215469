"""Classification and verification metrics: confusion matrix, macro-F1, report, EER, minDCF, trials."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_w2v2.classify.metrics import (
    classification_report,
    confusion_matrix,
    frame_f1,
    macro_f1,
    per_class_scores,
    plot_confusion_matrix,
)
from hf_w2v2.classify.splits import matches
from hf_w2v2.classify.verification import (
    build_trials,
    cosine_scores,
    equal_error_rate,
    min_dcf,
    plot_det_curve,
    read_trials,
    write_trials,
)


def test_confusion_and_per_class_scores():
    refs = np.array([0, 0, 1, 1, 2, 2])
    hyps = np.array([0, 1, 1, 1, 2, 0])
    m = confusion_matrix(refs, hyps, 3)
    assert m.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    scores = per_class_scores(m, ["a", "b", "c"])
    assert scores[0].precision == pytest.approx(0.5) and scores[0].recall == pytest.approx(0.5)
    assert scores[1].precision == pytest.approx(2 / 3) and scores[1].recall == pytest.approx(1.0)
    assert scores[2].f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert macro_f1(m) == pytest.approx(np.mean([0.5, 0.8, 2 / 3]))
    report = classification_report(m, ["a", "b", "c"])
    assert "accuracy" in report and "0.6667  (4/6)" in report


def test_macro_f1_ignores_absent_classes():
    m = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 4)
    assert macro_f1(m) == 1.0


def test_confusion_png(tmp_path):
    m = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    path = plot_confusion_matrix(m, ["x", "y"], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000 and path.endswith("c.png")


def test_frame_f1_counts_speech_frames_and_ignores_negative():
    refs = np.array([[0, 1, 1, 1, -1]])
    hyps = np.array([[1, 1, 1, 0, 1]])
    out = frame_f1(refs, hyps)
    assert out["frame_precision"] == pytest.approx(2 / 3) and out["frame_recall"] == pytest.approx(2 / 3)
    assert out["frame_f1"] == pytest.approx(2 / 3) and out["frame_accuracy"] == pytest.approx(0.5)


def test_eer_of_separable_and_overlapping_scores():
    targets = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    eer, threshold = equal_error_rate(np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4]), targets)
    assert eer == 0.0 and 0.4 <= threshold <= 0.6
    # One target below one non-target: 1 miss in 4 and 1 false alarm in 4 at the crossing.
    eer, _ = equal_error_rate(np.array([0.9, 0.8, 0.7, 0.35, 0.1, 0.2, 0.3, 0.5]), targets)
    assert eer == pytest.approx(0.25)


def test_eer_matches_brute_force_on_random_scores():
    rng = np.random.default_rng(0)
    targets = rng.random(400) < 0.3
    scores = rng.normal(size=400) + 1.5 * targets
    eer, _ = equal_error_rate(scores, targets)
    best = min(
        max(np.mean(scores[targets] < t), np.mean(scores[~targets] >= t)) for t in np.unique(scores)
    )  # the grid point closest to the crossing bounds the interpolated EER from above
    assert eer <= best + 1e-12 and eer > best - 0.02


def test_min_dcf_bounds_and_perfect_system():
    targets = np.array([1] * 10 + [0] * 90, dtype=bool)
    perfect = np.where(targets, 1.0, 0.0)
    assert min_dcf(perfect, targets)[0] == 0.0
    rng = np.random.default_rng(1)
    dcf, _ = min_dcf(rng.normal(size=100), targets, p_target=0.01)
    assert 0.0 < dcf <= 1.0  # rejecting everything costs exactly 1 (normalised)


def test_trials_are_target_and_nontarget_pairs(tmp_path):
    names = [f"{s}_{i}.wav" for s in "abc" for i in range(3)]
    speakers = [n[0] for n in names]
    trials = build_trials(names, speakers, max_per_kind=100, seed=0)
    targets = [t for t in trials if t.target]
    assert len(targets) == 9 and all(t.a[0] == t.b[0] for t in targets)
    assert len(trials) - len(targets) == 27 and all(t.a[0] != t.b[0] for t in trials if not t.target)
    assert len(build_trials(names, speakers, max_per_kind=5, seed=0)) == 10
    with pytest.raises(ValueError, match="at least 2 speakers"):
        build_trials(names[:3], speakers[:3])


def test_trials_file_round_trip_and_missing_file(tmp_path):
    names = [str(tmp_path / f"{n}.wav") for n in ("a", "b", "c")]
    for name in names:
        open(name, "wb").close()
    trials = build_trials(names, ["x", "x", "y"], seed=0)
    path = write_trials(trials, tmp_path / "trials.txt")
    assert (tmp_path / "trials.txt").read_text().splitlines()[0] == "1 a.wav b.wav"
    assert read_trials(path) == trials
    (tmp_path / "bad.txt").write_text("1 a.wav gone.wav\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: trial names a missing audio file: .*gone.wav"):
        read_trials(tmp_path / "bad.txt")


def test_cosine_scores_and_det(tmp_path):
    emb = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    trials = build_trials(["a", "b", "c"], ["s", "s", "t"], seed=0)
    scores = cosine_scores(emb, {"a": 0, "b": 1, "c": 2}, trials)
    by_pair = {(t.a, t.b): s for t, s in zip(trials, scores)}
    assert by_pair[("a", "b")] == pytest.approx(1.0) and by_pair[("a", "c")] == pytest.approx(0.0)
    targets = np.array([t.target for t in trials])
    plot_det_curve({"x": (scores, targets)}, tmp_path / "det.png")
    assert (tmp_path / "det.png").stat().st_size > 1000


def test_split_rules():
    row = {"speaker_id": "theo", "take": "7"}
    assert matches(row, "take>=5,speaker_id!=george")
    assert not matches(row, "take<5")
    assert matches(row, "speaker_id in theo|lucas") and not matches(row, "speaker_id not in theo")
    with pytest.raises(ValueError, match="names no column"):
        matches(row, "digit=3")
