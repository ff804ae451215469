"""Choosing the LM weight ``alpha`` and word bonus ``beta`` on a dev set.

The logits are computed once; each trial only re-runs the beam search with new
``alpha``/``beta`` (the LM stays loaded). Grid search tries every pair; random search
draws ``n_trials`` pairs uniformly inside the ranges the grids span. The winner (lowest
WER, ties to the earlier trial) is set on the decoder and recorded in ``decoder.tuning``,
which :meth:`BeamSearchDecoder.save_pretrained` writes into ``decoder_config.json``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.decoding.beam import BeamSearchDecoder, BeamSettings
from hf_w2v2.text.error_rates import word_error_rate

logger = logging.getLogger(__name__)

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DEFAULT_BETAS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


@dataclass
class TuningResult:
    """The best ``alpha``/``beta``, its WER, and every trial tried."""

    alpha: float
    beta: float
    wer: float
    search: str
    beam_width: int
    num_utterances: int
    trials: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _candidates(
    alphas: Sequence[float], betas: Sequence[float], search: str, n_trials: int, seed: int
) -> list[tuple[float, float]]:
    if search == "grid":
        return [(a, b) for a in alphas for b in betas]
    if search == "random":
        rng = random.Random(seed)
        return [(rng.uniform(min(alphas), max(alphas)), rng.uniform(min(betas), max(betas))) for _ in range(n_trials)]
    raise ValueError(f"search must be 'grid' or 'random', got {search!r}")


def tune_alpha_beta(
    decoder: BeamSearchDecoder,
    logits: Sequence[np.ndarray | torch.Tensor],
    references: Sequence[str],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    betas: Sequence[float] = DEFAULT_BETAS,
    search: str = "grid",
    n_trials: int = 20,
    seed: int = 0,
    beam_width: int | None = None,
    num_processes: int = 1,
    progress: bool = True,
) -> TuningResult:
    """Search ``alpha``/``beta`` minimising WER of ``decoder`` on ``(logits, references)``.

    Args:
        decoder: a decoder with an LM (not changed: each pair is given per call; save the best one with
            ``decoder.save_pretrained(folder, BeamSettings(alpha=..., beta=...), tuning=result.to_dict())``).
        logits: ``(F, V)`` logits per dev utterance. references: their transcripts.
        alphas, betas: grid values (``search="grid"``) or ranges (``"random"``).
        n_trials, seed: number of random draws and their seed.
        beam_width: beam during the search (a smaller one than for the final decode is
            usually enough and much faster); the decoder's own when ``None``.
        num_processes: worker processes for each decoding pass.
    """
    if not decoder.has_lm:
        raise ValueError("alpha/beta tuning needs a decoder with a language model")
    if len(logits) != len(references) or not references:
        raise ValueError(f"need as many logits as references (> 0), got {len(logits)} and {len(references)}")
    trials = []
    for alpha, beta in tqdm(
        _candidates(alphas, betas, search, n_trials, seed), desc="tuning alpha/beta", disable=not progress
    ):
        settings = BeamSettings(alpha=alpha, beta=beta, beam_width=beam_width)
        hypotheses = [t.text for t in decoder.decode_batch(logits, settings=settings, num_processes=num_processes)]
        trials.append({"alpha": alpha, "beta": beta, "wer": word_error_rate(references, hypotheses)})
    best = min(trials, key=lambda t: t["wer"])
    result = TuningResult(
        alpha=best["alpha"],
        beta=best["beta"],
        wer=best["wer"],
        search=search,
        beam_width=beam_width or decoder.beam_width,
        num_utterances=len(references),
        trials=trials,
    )
    for name, value, values in (("alpha", result.alpha, alphas), ("beta", result.beta, betas)):
        if search == "grid" and len(set(values)) > 1 and value in (min(values), max(values)):
            logger.warning(
                "the best %s (%g) is at the edge of the searched values %s: a wider range may do better",
                name,
                value,
                sorted(set(values)),
            )
    return result
