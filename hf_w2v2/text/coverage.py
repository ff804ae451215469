"""How well a character vocabulary covers a corpus: counts, missing characters, empty transcripts.

Run it before training: a character of the evaluation split that the vocabulary lacks
can never be recognised (it always costs an error), and a transcript that normalises to
nothing cannot be a CTC target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.text.vocab import count_characters


@dataclass
class CoverageReport:
    """Character statistics of a training split and, optionally, an evaluation split."""

    char_counts: Counter[str]
    """Occurrences of each character in the normalised training transcripts."""
    empty_train: list[int] = field(default_factory=list)
    """Indices of training transcripts that are empty after normalisation."""
    missing_eval: Counter[str] = field(default_factory=Counter)
    """Characters of the normalised evaluation transcripts absent from the vocabulary, with counts."""
    eval_with_missing: int = 0
    """Evaluation transcripts containing at least one missing character."""
    empty_eval: list[int] = field(default_factory=list)
    """Indices of evaluation transcripts that are empty after normalisation."""
    num_train: int = 0
    num_eval: int = 0
    eval_sets: dict[str, int] = field(default_factory=dict)
    """Clips per evaluation set when several were pooled into the eval counts (eval and test sets)."""
    _eval_chars: int = field(default=0, repr=False)  # non-space characters in the eval split

    @property
    def eval_char_coverage(self) -> float:
        """Fraction of evaluation characters (spaces excluded) that are in the vocabulary."""
        missing = sum(self.missing_eval.values())
        return 1.0 - missing / self._eval_chars if self._eval_chars else 1.0

    def format(self, max_items: int = 20) -> str:
        """A human-readable multi-line summary for logs."""
        counts = ", ".join(f"{ch!r}:{n}" for ch, n in sorted(self.char_counts.items()))
        lines = [
            f"train: {self.num_train} clips, {len(self.char_counts)} distinct characters: {counts}",
            f"train: {len(self.empty_train)} transcript(s) empty after normalisation"
            + (f" (indices {self.empty_train[:max_items]})" if self.empty_train else ""),
        ]
        if self.num_eval:
            pooled = len(self.eval_sets) > 1
            sets = " (" + ", ".join(f"{name} {n}" for name, n in self.eval_sets.items()) + ")" if pooled else ""
            missing = ", ".join(f"{ch!r}:{n}" for ch, n in self.missing_eval.most_common(max_items))
            lines += [
                f"eval: {self.num_eval} clips{sets}, character coverage {self.eval_char_coverage:.2%}",
                f"eval: {len(self.missing_eval)} character(s) missing from the vocabulary"
                + (f" in {self.eval_with_missing} transcript(s): {missing}" if self.missing_eval else ""),
                f"eval: {len(self.empty_eval)} transcript(s) empty after normalisation"
                + (f" (indices {self.empty_eval[:max_items]})" if self.empty_eval else ""),
            ]
        return "\n".join(lines)


def coverage_report(
    vocab: Mapping[str, int],
    train_texts: Sequence[str],
    eval_texts: Sequence[str] | None = None,
    normalizer: TextNormalizer | None = None,
) -> CoverageReport:
    """Compare raw ``train_texts`` / ``eval_texts`` (normalised here) with ``vocab``.

    Args:
        vocab: token -> id, as from :func:`hf_w2v2.text.vocab.build_vocab` or
            ``tokenizer.get_vocab()``.
        train_texts: raw training transcripts.
        eval_texts: raw evaluation transcripts, or ``None``.
        normalizer: the normaliser used to build ``vocab`` (default :class:`TextNormalizer`).
    """
    normalizer = normalizer or TextNormalizer()
    train = [normalizer(text) for text in train_texts]
    report = CoverageReport(
        char_counts=count_characters(train),
        empty_train=[i for i, text in enumerate(train) if not text],
        num_train=len(train),
    )
    if eval_texts is None:
        return report
    evals = [normalizer(text) for text in eval_texts]
    eval_counts = count_characters(evals)
    report.num_eval = len(evals)
    report.empty_eval = [i for i, text in enumerate(evals) if not text]
    report.missing_eval = Counter({ch: n for ch, n in eval_counts.items() if ch not in vocab})
    report.eval_with_missing = sum(1 for text in evals if any(ch in report.missing_eval for ch in text))
    report._eval_chars = sum(eval_counts.values())
    return report
