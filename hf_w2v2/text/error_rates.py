"""Word and character error rates (jiwer), shared by fine-tuning and decoding evaluation.

Corpus rates are total edits / total reference words (or characters, spaces counted).
Importing this module loads jiwer only, not the Trainer stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from hf_w2v2.optional import require


def _jiwer() -> ModuleType:
    return require("jiwer", "word and character error rates")


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER over the pairs whose reference is not empty."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(r, h) for r, h in zip(references, hypotheses) if r.strip()]
    if not pairs:
        raise ValueError("no non-empty reference to score")
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    jiwer = _jiwer()
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER."""
    return error_rates(references, hypotheses)["wer"]


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER."""
    return error_rates(references, hypotheses)["cer"]


def utterance_error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """(WER, CER) of one utterance (NaN for an empty reference)."""
    if not reference.strip():
        return float("nan"), float("nan")
    jiwer = _jiwer()
    return float(jiwer.wer(reference, hypothesis)), float(jiwer.cer(reference, hypothesis))
