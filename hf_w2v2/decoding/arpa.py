"""Reading and writing back-off n-gram models in the ARPA text format.

The format (as KenLM, SRILM and pyctcdecode read it)::

    \\data\\
    ngram 1=<count>
    ...
    (blank line)
    \\1-grams:
    <log10 p>\\t<w1>\\t<log10 back-off>
    ...
    \\2-grams:
    <log10 p>\\t<w1> <w2>\\t<log10 back-off>
    ...
    \\end\\

Fields are tab-separated, words of an n-gram space-separated, probabilities base 10.
Every n-gram below the highest order carries a back-off field (``0`` when it is never
a context): pyctcdecode only reads unigram lines that have exactly three fields.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator

from tqdm.auto import tqdm

from hf_w2v2.decoding.ngram import (
    BOS,
    EOS,
    UNK,
    Ngram,
    NgramModel,
    count_ngrams,
    estimate_kneser_ney,
    read_sentences,
)
from hf_w2v2.files import written_whole

LOG10_ZERO = -99.0  # what ARPA files write for log10(0), e.g. the unigram <s>
_HEADER_RE = re.compile(r"^ngram (\d+)=(\d+)$")
_SECTION_RE = re.compile(r"^\\(\d+)-grams:$")


def _log10(p: float) -> float:
    return LOG10_ZERO if p <= 0.0 else math.log10(p)


def write_arpa(model: NgramModel, path: str | os.PathLike, progress: bool = True) -> None:
    """Write ``model`` as an ARPA file (n-grams sorted, so the output is deterministic), whole: a Ctrl-C or a
    full disk while writing leaves no half file at ``path`` (it would fail to load only later, far from here)."""
    with written_whole(os.fspath(path)) as part, open(part, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for n, probs in enumerate(model.probs, 1):
            out.write(f"ngram {n}={len(probs)}\n")
        for n, probs in enumerate(model.probs, 1):
            out.write(f"\n\\{n}-grams:\n")
            backoffs = model.backoffs[n - 1]
            with_backoff = n < model.order
            for ngram in tqdm(sorted(probs), desc=f"writing {n}-grams", unit=" ngrams", disable=not progress):
                line = f"{_log10(probs[ngram]):.7g}\t{' '.join(ngram)}"
                if with_backoff:
                    line += f"\t{_log10(backoffs.get(ngram, 1.0)):.7g}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")


def _parse_header(lines: list[str], path: str) -> list[int]:
    sizes: list[int] = []
    for line in lines:
        match = _HEADER_RE.match(line)
        if match is None:
            raise ValueError(f"{path}: bad ARPA header line {line!r} (expected 'ngram N=COUNT')")
        if int(match.group(1)) != len(sizes) + 1:
            raise ValueError(f"{path}: ARPA header lists orders out of sequence at {line!r}")
        sizes.append(int(match.group(2)))
    if not sizes:
        raise ValueError(f"{path}: ARPA header lists no n-gram orders")
    return sizes


def _read_ngrams(lines: Iterator[str], order: int, path: str) -> tuple[list[dict], list[dict]]:
    """Probabilities and back-offs of the ``\\N-grams:`` sections up to ``order``."""
    probs: list[dict[Ngram, float]] = [{} for _ in range(order)]
    backoffs: list[dict[Ngram, float]] = [{} for _ in range(order)]
    n = 0
    for line in lines:
        if not line.strip():
            continue
        section = _SECTION_RE.match(line.strip())
        if section is not None or line.strip() == "\\end\\":
            n = int(section.group(1)) if section else 0
            if n > order or n == 0:
                break
            continue
        if n == 0:
            raise ValueError(f"{path}: n-gram line before any \\N-grams: section: {line!r}")
        fields = line.split("\t")
        ngram = tuple(fields[1].split()) if len(fields) in (2, 3) else ()
        if len(ngram) != n:
            raise ValueError(f"{path}: bad {n}-gram line {line!r} (expected 'log10p<TAB>words[<TAB>backoff]')")
        probs[n - 1][ngram] = 10.0 ** float(fields[0])
        if len(fields) == 3:
            backoffs[n - 1][ngram] = 10.0 ** float(fields[2])
    return probs, backoffs


def read_arpa(path: str | os.PathLike, max_order: int | None = None) -> NgramModel:
    """Read an ARPA file into an :class:`NgramModel` (linear probabilities).

    Args:
        path: the ``.arpa`` file.
        max_order: stop after this order (``1`` reads just the vocabulary, fast).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not valid ARPA (the message names the line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ARPA language model not found: {path}")
    with open(path, encoding="utf-8") as handle:
        lines = (line.rstrip("\n") for line in handle)
        if not any(line.strip() == "\\data\\" for line in lines):
            raise ValueError(f"{path}: not an ARPA file (no \\data\\ line)")
        header = []
        for line in lines:
            if not line.strip():
                break
            header.append(line.strip())
        sizes = _parse_header(header, path)
        order = len(sizes) if max_order is None else min(max_order, len(sizes))
        probs, backoffs = _read_ngrams(lines, order, path)
    for n in range(order):
        if len(probs[n]) != sizes[n]:
            raise ValueError(f"{path}: header promises {sizes[n]} {n + 1}-grams, file holds {len(probs[n])}")
    for token in (BOS, EOS):
        if (token,) not in probs[0]:
            raise ValueError(f"{path}: ARPA vocabulary lacks {token}")
    probs[0].setdefault((UNK,), 0.0)  # as KenLM: a model without <unk> gives it probability 0
    return NgramModel(order=order, probs=probs, backoffs=backoffs)


def read_arpa_vocabulary(path: str | os.PathLike) -> list[str]:
    """The words of an ARPA file's unigram section (without ``<s>``, ``</s>``, ``<unk>``)."""
    return [w for w in read_arpa(path, max_order=1).vocabulary if w not in (BOS, EOS, UNK)]


def build_arpa(
    corpus: str | os.PathLike,
    arpa_path: str | os.PathLike,
    order: int = 4,
    prune: tuple[int, ...] = (),
    progress: bool = True,
) -> NgramModel:
    """Estimate a modified Kneser-Ney model from a text file and write it as ARPA.

    Args:
        corpus: text file, one sentence a line, words separated by whitespace. Use the
            casing and characters of the CTC vocabulary (e.g. upper case, apostrophes).
        arpa_path: output ``.arpa`` file.
        order: n-gram order, 2..6 are sensible (4 or 5 usual for CTC decoding).
        prune: per-order count thresholds, e.g. ``(0, 0, 1, 1)`` drops singleton 3- and 4-grams.
        progress: show progress bars.
    """
    if not 1 <= order <= 9:
        raise ValueError(f"n-gram order must be in 1..9, got {order}")
    if len(prune) > order:
        raise ValueError(f"prune lists {len(prune)} thresholds for an order-{order} model")
    counts = count_ngrams(read_sentences(corpus, progress=progress), order, progress=progress)
    model = estimate_kneser_ney(counts, prune=prune, progress=progress)
    write_arpa(model, arpa_path, progress=progress)
    return model
