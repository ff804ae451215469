"""Choosing the LM weight ``alpha`` and word bonus ``beta`` on a dev set.

The logits are computed once; each trial only re-runs the beam search with new
``alpha``/``beta`` (the LM stays loaded). Grid search tries every pair; random search
draws ``n_trials`` pairs uniformly inside the ranges the grids span (one :class:`AlphaBetaSearch`
says which). The winner (lowest WER, ties to the earlier trial) comes back in a :class:`TuningResult`;
the decoder is not changed: :meth:`BeamSearchDecoder.save_pretrained` writes the pair and the record
into ``decoder_config.json``.
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


@dataclass(frozen=True)
class AlphaBetaSearch:
    """Which ``alpha``/``beta`` pairs :func:`tune_alpha_beta` tries, and with how many beams."""

    alphas: Sequence[float] = DEFAULT_ALPHAS
    """LM weights: the grid (``search="grid"``), or by their min and max the range drawn from (``"random"``)."""
    betas: Sequence[float] = DEFAULT_BETAS
    """Word insertion bonuses (log-score per word), used as ``alphas`` are."""
    search: str = "grid"
    """``"grid"``: every pair of ``alphas`` x ``betas``; ``"random"``: ``n_trials`` uniform draws."""
    n_trials: int = 20
    """Pairs drawn by a random search."""
    seed: int = 0
    """Seed of the random draws."""
    beam_width: int | None = None
    """Beams kept per frame during the search (a smaller one than for the final decode is usually enough
    and much faster); ``None``: the decoder's own."""

    def candidates(self) -> list[tuple[float, float]]:
        """The ``(alpha, beta)`` pairs to try, in order."""
        alphas, betas = self.alphas, self.betas
        if self.search == "grid":
            return [(a, b) for a in alphas for b in betas]
        if self.search == "random":
            rng = random.Random(self.seed)
            draw = lambda values: rng.uniform(min(values), max(values))
            return [(draw(alphas), draw(betas)) for _ in range(self.n_trials)]
        raise ValueError(f"search must be 'grid' or 'random', got {self.search!r}")


def tune_alpha_beta(
    decoder: BeamSearchDecoder,
    logits: Sequence[np.ndarray | torch.Tensor],
    references: Sequence[str],
    space: AlphaBetaSearch | None = None,
    num_processes: int = 1,
    progress: bool = True,
) -> TuningResult:
    """Search ``alpha``/``beta`` minimising WER of ``decoder`` on ``(logits, references)``.

    Args:
        decoder: a decoder with an LM (not changed: each pair is given per call; save the best one with
            ``decoder.save_pretrained(folder, BeamSettings(alpha=..., beta=...), tuning=result.to_dict())``).
        logits: ``(F, V)`` logits per dev utterance. references: their transcripts.
        space: the pairs to try and the beam width of the search (default: the 7 x 7 grid of
            ``DEFAULT_ALPHAS`` x ``DEFAULT_BETAS`` with the decoder's beam width).
        num_processes: worker processes for each decoding pass.
    """
    space = space or AlphaBetaSearch()
    alphas, betas, search, beam_width = space.alphas, space.betas, space.search, space.beam_width
    if not decoder.has_lm:
        raise ValueError("alpha/beta tuning needs a decoder with a language model")
    if len(logits) != len(references) or not references:
        raise ValueError(f"need as many logits as references (> 0), got {len(logits)} and {len(references)}")
    trials = []
    for alpha, beta in tqdm(space.candidates(), desc="tuning alpha/beta", disable=not progress):
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
