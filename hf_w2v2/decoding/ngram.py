"""Word n-gram language models with interpolated modified Kneser-Ney smoothing.

The recipe is the one KenLM's ``lmplz`` implements (Heafield et al. 2013, "Scalable
modified Kneser-Ney language model estimation"), itself from Chen & Goodman (1998),
"An empirical study of smoothing techniques for language modeling", section 3:

1. Count every n-gram of each padded sentence ``<s> w1 .. wm </s>`` (orders 1..N).
2. *Adjusted counts* ``a(g)``: the raw count at the highest order and for n-grams that
   start with ``<s>`` (they have no left context); otherwise the continuation count
   ``N1+(. g)``, the number of distinct words seen to the left of ``g``.
3. Per order, discounts from the counts-of-counts ``t_k`` of the adjusted counts:
   ``Y = t1 / (t1 + 2 t2)``, ``D_k = k - (k + 1) Y t_{k+1} / t_k`` for k = 1, 2, 3+.
4. Interpolation, from unigrams up (``h'`` is ``h`` without its first word)::

       p(w | h) = (a(hw) - D(a(hw))) / sum_x a(hx)  +  gamma(h) p(w | h')
       gamma(h) = sum_x D(a(hx)) / sum_x a(hx)

   and the unigram distribution is interpolated with the uniform one over the
   vocabulary (``</s>`` and ``<unk>`` included, ``<s>`` excluded: it is never predicted).

Written in back-off form, ``gamma(h)`` is exactly the ARPA back-off weight of ``h``,
so the model stays normalised. Pruning (``prune[n-1] = k`` drops n-grams of order n
with adjusted count ``<= k``) moves a dropped n-gram's whole count into ``gamma(h)``,
which keeps it normalised too; the prefix and suffix of every kept n-gram are kept
so every context carries its back-off weight.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # D1, D2, D3+ when counts-of-counts are degenerate (as lmplz)

Ngram = tuple[str, ...]


@dataclass
class NgramModel:
    """A back-off n-gram model in linear probabilities (what an ARPA file holds).

    ``probs[n - 1]`` maps each n-gram to ``p(w | h)``; ``backoffs[n - 1]`` maps an
    n-gram used as a context to its back-off weight ``gamma`` (1.0 when absent).
    """

    order: int
    probs: list[dict[Ngram, float]]
    backoffs: list[dict[Ngram, float]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def vocabulary(self) -> list[str]:
        """Every unigram, ``<s>``, ``</s>`` and ``<unk>`` included."""
        return [g[0] for g in self.probs[0]]

    def prob(self, word: str, history: Sequence[str]) -> float:
        """``p(word | history)`` with back-off; unknown words score as ``<unk>``."""
        unigrams = self.probs[0]
        word = word if (word,) in unigrams else UNK
        context = tuple(w if (w,) in unigrams else UNK for w in history)
        context = context[-(self.order - 1) :] if self.order > 1 else ()  # the model sees N - 1 words
        weight = 1.0
        while True:
            ngram = context + (word,)
            p = self.probs[len(ngram) - 1].get(ngram)
            if p is not None:
                return weight * p
            weight *= self.backoffs[len(context) - 1].get(context, 1.0)
            context = context[1:]


def read_sentences(path: str | os.PathLike, progress: bool = True) -> list[list[str]]:
    """Read a text file, one sentence a line, whitespace-tokenised; blank lines skipped.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line holds the reserved tokens ``<s>`` or ``</s>``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"LM text corpus not found: {path}")
    sentences = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(tqdm(handle, desc="reading corpus", unit=" lines", disable=not progress), 1):
            words = line.split()
            if BOS in words or EOS in words:
                raise ValueError(f"{path}:{line_no}: the text holds the reserved token {BOS} or {EOS}")
            if words:
                sentences.append(words)
    if not sentences:
        raise ValueError(f"LM text corpus {path} holds no words")
    return sentences


def count_ngrams(sentences: Iterable[Sequence[str]], order: int, progress: bool = True) -> list[Counter]:
    """Raw counts of all n-grams (n = 1..order) of the ``<s> .. </s>``-padded sentences.

    ``counts[n - 1]`` holds the n-grams; the unigram ``<s>`` is not counted (it is a
    context only, never a predicted word).
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    counts: list[Counter] = [Counter() for _ in range(order)]
    for words in tqdm(sentences, desc="counting n-grams", unit=" sent", disable=not progress):
        padded = [BOS, *words, EOS]
        counts[0].update(padded[1:])
        for n in range(2, order + 1):
            # zip of n shifted views yields every window of n words
            counts[n - 1].update(zip(*(padded[i:] for i in range(n))))
    counts[0] = Counter({(w,): c for w, c in counts[0].items()})
    return counts


def adjust_counts(counts: Sequence[Counter]) -> list[Counter]:
    """Kneser-Ney adjusted counts (step 2 of the module docstring)."""
    order = len(counts)
    adjusted: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order)]
    adjusted[-1] = counts[-1]
    for n in range(order - 1, 0, -1):  # n-gram order being adjusted; counts[n] is order n + 1
        continuation = Counter(g[1:] for g in counts[n])  # distinct left extensions of each n-gram
        lower = counts[n - 1]
        adjusted[n - 1] = Counter({g: (c if g[0] == BOS else continuation[g]) for g, c in lower.items()})
    return adjusted


def kneser_ney_discounts(adjusted: Counter, order: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts ``(D1, D2, D3+)`` from counts-of-counts (Chen & Goodman eq. 26).

    Falls back to ``(0.5, 1.0, 1.5)`` with a warning when the formula is undefined or
    out of range (tiny corpora), as ``lmplz --discount_fallback`` does.
    """
    t = Counter(c for c in adjusted.values() if c <= 4)  # t_k: n-grams with adjusted count exactly k
    t1, t2, t3, t4 = t[1], t[2], t[3], t[4]
    if min(t1, t2, t3, t4) > 0:
        y = t1 / (t1 + 2 * t2)
        discounts = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < d < k for k, d in enumerate(discounts, 1)):
            return discounts
    logger.warning(
        "order %d: counts-of-counts %s give no valid Kneser-Ney discounts; using fallback %s",
        order,
        (t1, t2, t3, t4),
        FALLBACK_DISCOUNTS,
    )
    return FALLBACK_DISCOUNTS


def _kept_ngrams(adjusted: Sequence[Counter], prune: Sequence[int]) -> list[set[Ngram]]:
    """N-grams that survive pruning, plus the prefix and suffix of every survivor."""
    order = len(adjusted)
    kept: list[set[Ngram]] = [set() for _ in range(order)]
    for n in range(order, 0, -1):
        threshold = prune[n - 1] if n - 1 < len(prune) else 0
        kept[n - 1].update(g for g, c in adjusted[n - 1].items() if c > threshold)
        if n > 1:
            kept[n - 2].update(g[:-1] for g in kept[n - 1])
            kept[n - 2].update(g[1:] for g in kept[n - 1])
    return kept


def _interpolate_order(
    adjusted: Counter,
    kept: set[Ngram],
    discounts: tuple[float, float, float],
    lower: dict[Ngram, float] | None,
    uniform: float,
) -> tuple[dict[Ngram, float], dict[Ngram, float]]:
    """Probabilities of one order's kept n-grams and the back-off weights of their contexts.

    ``lower`` holds the probabilities of the order below (``None`` for unigrams, which
    interpolate with the ``uniform`` probability).
    """
    denominator: Counter[tuple[str, ...]] = Counter()
    # numerator of gamma(h): discounts, plus whole counts of pruned n-grams
    discount_mass: dict[tuple[str, ...], float] = defaultdict(float)
    d1, d2, d3 = discounts
    for g, c in adjusted.items():
        h = g[:-1]
        denominator[h] += c
        discount_mass[h] += (d1 if c == 1 else d2 if c == 2 else d3) if g in kept else c
    gamma = {h: discount_mass[h] / denominator[h] for h in denominator}
    probs = {}
    for g in kept:
        c = adjusted.get(g, 0)  # 0 only for <unk>, added by the caller
        discount = 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3
        h = g[:-1]
        backoff = uniform if lower is None else lower[g[1:]]
        probs[g] = (c - discount) / denominator[h] + gamma[h] * backoff
    return probs, gamma


def estimate_kneser_ney(counts: Sequence[Counter], prune: Sequence[int] = (), progress: bool = True) -> NgramModel:
    """Interpolated modified Kneser-Ney model from raw counts (see :func:`count_ngrams`).

    Args:
        counts: ``counts[n - 1]`` raw counts of order-n n-grams.
        prune: per-order thresholds; n-grams of order n with adjusted count ``<= prune[n - 1]``
            are dropped (``(0, 0, 1)`` drops singleton trigrams). Unigrams are never pruned.
        progress: show a progress bar over the orders.
    """
    order = len(counts)
    if any(k < 0 for k in prune) or (prune and prune[0] != 0):
        raise ValueError(f"prune thresholds must be >= 0 and 0 for unigrams, got {tuple(prune)}")
    adjusted = adjust_counts(counts)
    kept = _kept_ngrams(adjusted, prune)
    kept[0].add((UNK,))
    kept[0].discard((BOS,))
    discounts = [kneser_ney_discounts(adjusted[n], n + 1) for n in range(order)]
    uniform = 1.0 / len(kept[0])  # vocabulary of predicted words: </s> and <unk>, not <s>
    probs: list[dict[Ngram, float]] = []
    backoffs: list[dict[Ngram, float]] = []
    for n in tqdm(range(order), desc="Kneser-Ney", unit=" order", disable=not progress):
        lower = probs[n - 1] if n > 0 else None
        order_probs, gamma = _interpolate_order(adjusted[n], kept[n], discounts[n], lower, uniform)
        probs.append(order_probs)
        if n > 0:
            backoffs.append({h: g for h, g in gamma.items() if h in probs[n - 1] or h == (BOS,)})
    probs[0][(BOS,)] = 0.0  # <s> is a context only: log10 p = -99 in the ARPA file
    backoffs.append({})
    return NgramModel(order=order, probs=probs, backoffs=backoffs, discounts=discounts)
