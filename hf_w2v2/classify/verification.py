"""Speaker verification: trials, cosine scoring, EER, minDCF, the DET curve.

Shape legend: N clips, E embedding dim.

A *trial* is a pair of recordings and whether the same speaker spoke both (target) or not
(non-target). Trials files use the VoxCeleb layout, one trial per line: ``1 a.flac b.flac``
(target) or ``0 a.flac b.flac``; relative paths are relative to the trials file's folder.

Scores are cosine similarities of x-vector embeddings. The equal error rate (EER) is where the
false-acceptance and false-rejection rates meet (linearly interpolated between the two
thresholds that bracket it); minDCF is NIST's minimum normalised detection cost
``min_t (C_miss P_miss(t) p + C_fa P_fa(t) (1 - p)) / min(C_miss p, C_fa (1 - p))``
with ``p = p_target`` (0.01 here, as in VoxSRC), ``C_miss = C_fa = 1``.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F

from hf_w2v2.data.paths import read_utf8, resolve_listed


@dataclass(frozen=True)
class Trial:
    """Two recordings; ``target`` when one speaker spoke both."""

    target: bool
    a: str
    b: str


def build_trials(names: Sequence[str], speakers: Sequence[str], max_per_kind: int = 5000, seed: int = 0) -> list[Trial]:
    """Target and non-target pairs of distinct clips, at most ``max_per_kind`` of each (sampled with ``seed``).

    Every same-speaker pair is a target candidate and every cross-speaker pair a non-target
    candidate; a kind with more candidates than ``max_per_kind`` is sampled without replacement.

    Raises:
        ValueError: fewer than two speakers, or no speaker with two clips.
    """
    if len(names) != len(speakers):
        raise ValueError(f"{len(names)} names but {len(speakers)} speakers")
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for index, speaker in enumerate(speakers):
        by_speaker[speaker].append(index)
    if len(by_speaker) < 2:
        raise ValueError(f"trials need at least 2 speakers, got {sorted(by_speaker)}")
    rng = random.Random(seed)
    n = len(names)
    targets = [(i, j) for idx in by_speaker.values() for k, i in enumerate(idx) for j in idx[k + 1 :]]
    if not targets:
        raise ValueError("trials need a speaker with at least 2 clips (no target pair)")
    if len(targets) > max_per_kind:
        targets = rng.sample(targets, max_per_kind)
    total_pairs = n * (n - 1) // 2
    wanted = min(max_per_kind, total_pairs - sum(len(v) * (len(v) - 1) // 2 for v in by_speaker.values()))
    nontargets: set[tuple[int, int]] = set()
    while len(nontargets) < wanted:  # rejection sampling: cross-speaker pairs are the large majority
        i, j = sorted(rng.sample(range(n), 2))
        if speakers[i] != speakers[j]:
            nontargets.add((i, j))
    pairs = [(True, i, j) for i, j in targets] + [(False, i, j) for i, j in sorted(nontargets)]
    return [Trial(t, names[i], names[j]) for t, i, j in pairs]


def write_trials(trials: Sequence[Trial], path: str | os.PathLike) -> str:
    """Write ``trials`` as ``1|0 A B`` lines (paths relative to the file's folder when below it)."""
    base = Path(path).resolve().parent

    def rel(name: str) -> str:
        full = Path(name).resolve()
        return str(full.relative_to(base)) if full.is_relative_to(base) else str(full)

    text = "".join(f"{int(t.target)} {rel(t.a)} {rel(t.b)}\n" for t in trials)
    Path(path).write_text(text, encoding="utf-8")
    return os.fspath(path)


def read_trials(
    path: str | os.PathLike, check_files: bool = True, allow_outside_root: bool | None = None
) -> list[Trial]:
    """Read a ``1|0 A B`` trials file (UTF-8); relative paths stay inside its folder (absolute ones are
    taken as written, see :mod:`hf_w2v2.data.paths`; ``allow_outside_root`` lifts the rule).

    Raises:
        ValueError: not UTF-8, a malformed line (its number is given), a relative path leaving the
            folder, or, with ``check_files``, a trial naming a file that does not exist (the file and
            the line are named).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"trials file not found: {path}")
    trials = []
    for number, line in enumerate(read_utf8(path, "trials file").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise ValueError(f"{path}:{number}: expected '1|0 AUDIO_A AUDIO_B', got {line!r}")
        a, b = (resolve_listed(p, path.parent, f"{path}:{number}", allow_outside_root) for p in parts[1:])
        for name in (a, b) if check_files else ():
            if not os.path.isfile(name):
                raise ValueError(f"{path}:{number}: trial names a missing audio file: {name}")
        trials.append(Trial(parts[0] == "1", a, b))
    if not trials:
        raise ValueError(f"{path} holds no trials")
    return trials


def cosine_scores(embeddings: torch.Tensor, index: dict[str, int], trials: Sequence[Trial]) -> np.ndarray:
    """Cosine similarity of each trial's two embeddings; ``embeddings`` (N, E), ``index`` name -> row.
    The one cosine of verification: ``hf-w2v2 verify`` scores its pair with it too."""
    missing = sorted({n for t in trials for n in (t.a, t.b) if n not in index})
    if missing:
        raise ValueError(f"{len(missing)} trial file(s) have no embedding, e.g. {missing[:5]}")
    unit = F.normalize(embeddings.float(), dim=-1)  # (N, E)
    a = torch.tensor([index[t.a] for t in trials])
    b = torch.tensor([index[t.b] for t in trials])
    return (unit[a] * unit[b]).sum(dim=-1).numpy()  # (trials,)


def error_rates(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, P_miss, P_fa) with a trial accepted when its score >= threshold, thresholds ascending.

    The first threshold accepts everything (P_miss 0, P_fa 1); after the last score everything is rejected.
    """
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets, dtype=bool)
    if targets.all() or not targets.any():
        raise ValueError("error rates need both target and non-target trials")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_targets = scores[order], targets[order]
    # Rejecting the k lowest scores, k = 0..N: misses = targets among them, false alarms = non-targets above.
    misses = np.concatenate([[0], np.cumsum(sorted_targets)])
    false_alarms = (~targets).sum() - np.concatenate([[0], np.cumsum(~sorted_targets)])
    thresholds = np.concatenate([sorted_scores, [np.inf]])
    return thresholds, misses / targets.sum(), false_alarms / (~targets).sum()


def equal_error_rate(scores: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where P_miss and P_fa cross, interpolated linearly between neighbouring thresholds."""
    thresholds, p_miss, p_fa = error_rates(scores, targets)
    diff = p_miss - p_fa  # rises from -1 to +1
    k = int(np.argmax(diff >= 0))
    if k == 0 or diff[k] == 0:
        threshold = thresholds[k] if np.isfinite(thresholds[k]) else thresholds[k - 1]
        return float((p_miss[k] + p_fa[k]) / 2), float(threshold)
    w = -diff[k - 1] / (diff[k] - diff[k - 1])  # fraction of the step from k-1 to k where they cross
    eer = (1 - w) * (p_miss[k - 1] + p_fa[k - 1]) / 2 + w * (p_miss[k] + p_fa[k]) / 2
    high = thresholds[k] if np.isfinite(thresholds[k]) else thresholds[k - 1]
    return float(eer), float((1 - w) * thresholds[k - 1] + w * high)


def min_dcf(
    scores: np.ndarray, targets: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> tuple[float, float]:
    """(normalised minDCF, its threshold)."""
    thresholds, p_miss, p_fa = error_rates(scores, targets)
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    k = int(np.argmin(cost))
    norm = min(c_miss * p_target, c_fa * (1 - p_target))
    return float(cost[k] / norm), float(thresholds[k])


def plot_det_curve(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | os.PathLike) -> str:
    """Detection error trade-off curves (probit axes), one per ``name -> (scores, targets)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probit = NormalDist().inv_cdf
    clip = lambda p: min(max(float(p), 1e-4), 1 - 1e-4)
    ticks = [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (scores, targets) in curves.items():
        _, p_miss, p_fa = error_rates(scores, targets)
        eer, _ = equal_error_rate(scores, targets)
        ax.plot([probit(clip(p)) for p in p_fa], [probit(clip(p)) for p in p_miss], label=f"{name} (EER {eer:.2%})")
    ax.plot([probit(ticks[0]), probit(ticks[-1])], [probit(ticks[0]), probit(ticks[-1])], "k:", lw=0.8)
    ax.set_xticks([probit(t) for t in ticks], [f"{t:.0%}" if t >= 0.01 else f"{t:.1%}" for t in ticks])
    ax.set_yticks([probit(t) for t in ticks], [f"{t:.0%}" if t >= 0.01 else f"{t:.1%}" for t in ticks])
    ax.set_xlim(probit(ticks[0]), probit(0.5))
    ax.set_ylim(probit(ticks[0]), probit(0.5))
    ax.set_xlabel("false acceptance rate")
    ax.set_ylabel("false rejection rate")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)
