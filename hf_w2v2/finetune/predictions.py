"""Per-utterance predictions for error analysis: one TSV row per utterance, worst first."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

from hf_w2v2.text.error_rates import utterance_error_rates

COLUMNS = ("name", "wer", "cer", "reference", "hypothesis")


def write_predictions(
    path: str | os.PathLike, names: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]
) -> str:
    """Write ``name, wer, cer, reference, hypothesis`` rows sorted by CER (worst first).

    Raises:
        ValueError: the three sequences have different lengths.
    """
    if not len(names) == len(references) == len(hypotheses):
        raise ValueError(f"{len(names)} names, {len(references)} references, {len(hypotheses)} hypotheses")
    rows = []
    for name, ref, hyp in zip(names, references, hypotheses):
        wer, cer = utterance_error_rates(ref, hyp)
        rows.append((name, wer, cer, ref, hyp))
    rows.sort(key=lambda row: -row[2] if row[2] == row[2] else 0.0)  # NaN (empty reference) last
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for name, wer, cer, ref, hyp in rows:
            writer.writerow([name, f"{wer:.4f}", f"{cer:.4f}", ref, hyp])
    return os.fspath(path)


def read_predictions(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a predictions file as dicts keyed by :data:`COLUMNS`."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
