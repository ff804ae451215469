"""Modified Kneser-Ney n-gram LMs and the ARPA format (normalised, readable by KenLM/pyctcdecode)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from fixtures.decoding.tiny import CORPUS

from hf_w2v2.decoding.arpa import build_arpa, read_arpa, read_arpa_vocabulary, write_arpa
from hf_w2v2.decoding.ngram import (
    BOS,
    FALLBACK_DISCOUNTS,
    adjust_counts,
    count_ngrams,
    estimate_kneser_ney,
    kneser_ney_discounts,
    read_sentences,
)

SENTENCES = [["A", "B"], ["A", "B"], ["B"]]


def total_prob(model, history: list[str]) -> float:
    """Sum of p(w | history) over every predictable word (vocabulary, </s>, <unk>; not <s>)."""
    return sum(model.prob(w, history) for w in model.vocabulary if w != BOS)


def test_counts_and_adjusted_counts() -> None:
    counts = count_ngrams(SENTENCES, 2, progress=False)
    assert counts[0] == Counter({("A",): 2, ("B",): 3, ("</s>",): 3})  # <s> is never predicted
    assert counts[1][("<s>", "A")] == 2 and counts[1][("B", "</s>")] == 3
    adjusted = adjust_counts(counts)
    # unigram continuation counts: distinct left neighbours
    assert adjusted[0] == Counter({("A",): 1, ("B",): 2, ("</s>",): 1})
    assert adjusted[1] == counts[1]  # highest order keeps raw counts


def test_discounts_formula_and_fallback() -> None:
    adjusted = Counter({i: c for i, c in enumerate([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [9])})
    d1, d2, d3 = kneser_ney_discounts(adjusted, 1)  # Y = 10 / (10 + 2 * 5) = 0.5
    assert (d1, d2, d3) == pytest.approx((1 - 2 * 0.5 * 5 / 10, 2 - 3 * 0.5 * 3 / 5, 3 - 4 * 0.5 * 2 / 3))
    assert kneser_ney_discounts(Counter({0: 1, 1: 2}), 1) == FALLBACK_DISCOUNTS


def test_hand_computed_bigram_model() -> None:
    """Values worked out by hand from the formulas in the ngram module docstring."""
    model = estimate_kneser_ney(count_ngrams(SENTENCES, 2, progress=False), progress=False)
    # unigrams: adjusted A=1, B=2, </s>=1; D=(.5, 1, 1.5); gamma = 2/4; uniform 1/4 over A B </s> <unk>
    assert model.prob("A", []) == pytest.approx(0.5 / 4 + 0.5 / 4)
    assert model.prob("B", []) == pytest.approx(1 / 4 + 0.5 / 4)
    assert model.prob("<unk>", []) == pytest.approx(0.5 / 4)
    # p(A | <s>) = (2 - D2) / 3 + gamma(<s>) p(A), gamma(<s>) = (D2 + D1) / 3
    assert model.prob("A", ["<s>"]) == pytest.approx(1 / 3 + 0.5 * 0.25)
    assert model.prob("B", ["<s>"]) == pytest.approx(0.5 / 3 + 0.5 * 0.375)
    # unseen bigram backs off: p(A | B) = gamma(B) p(A) with gamma(B) = 1.5 / 3
    assert model.prob("A", ["B"]) == pytest.approx(0.5 * 0.25)
    assert model.prob("ZZZ", ["A"]) == pytest.approx(model.prob("<unk>", ["A"]))


@pytest.mark.parametrize(("order", "prune"), [(2, ()), (3, ()), (4, (0, 0, 1, 1)), (5, (0, 1, 1, 2, 2))])
def test_arpa_probabilities_are_normalised(tmp_path, order: int, prune: tuple[int, ...]) -> None:
    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS, path, order=order, prune=prune, progress=False)
    model = read_arpa(path)  # scored from the file, with back-off, not from memory
    histories = [
        [],
        ["<s>"],
        ["<s>", "AND"],
        ["AND", "THE"],
        ["OF", "THE", "LORD"],
        ["THE", "XYZZY"],
        ["<s>", "I", "WILL", "NOT"],
        ["UNTO", "HIM", "AND", "SAID"],
    ]
    for history in histories:
        assert total_prob(model, history) == pytest.approx(1.0, abs=1e-4), history


def test_pruning_keeps_contexts_and_shrinks(tmp_path) -> None:
    full = estimate_kneser_ney(count_ngrams(read_sentences(CORPUS, progress=False), 3, progress=False), progress=False)
    pruned = estimate_kneser_ney(
        count_ngrams(read_sentences(CORPUS, progress=False), 3, progress=False), prune=(0, 1, 1), progress=False
    )
    assert len(pruned.probs[2]) < len(full.probs[2]) / 2
    for n in (1, 2):  # every kept n-gram's prefix and suffix are kept one order down
        for ngram in pruned.probs[n]:
            assert ngram[:-1] in pruned.probs[n - 1] and ngram[1:] in pruned.probs[n - 1]
    with pytest.raises(ValueError, match="prune thresholds"):
        estimate_kneser_ney(count_ngrams(SENTENCES, 2, progress=False), prune=(1, 0), progress=False)


def test_arpa_format_and_round_trip(tmp_path) -> None:
    path = tmp_path / "lm.arpa"
    model = build_arpa(CORPUS, path, order=3, progress=False)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        "\\data\\",
        f"ngram 1={len(model.probs[0])}",
        f"ngram 2={len(model.probs[1])}",
        f"ngram 3={len(model.probs[2])}",
    ]
    assert lines[-1] == "\\end\\"
    unigram_lines = lines[lines.index("\\1-grams:") + 1 : lines.index("\\2-grams:") - 1]
    assert all(len(line.split("\t")) == 3 for line in unigram_lines)  # tab-separated, with back-off
    assert any(line.split("\t")[1] == "<s>" and line.startswith("-99\t") for line in unigram_lines)
    assert {"<s>", "</s>", "<unk>"} <= set(model.vocabulary)
    reread = read_arpa(path)
    for history, word in [(["<s>"], "AND"), (["AND", "THE"], "LORD"), (["THE"], "</s>")]:
        assert reread.prob(word, history) == pytest.approx(model.prob(word, history), rel=1e-5)
    copy = tmp_path / "copy.arpa"
    write_arpa(reread, copy, progress=False)
    assert copy.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_kenlm_and_pyctcdecode_load_it(tmp_path) -> None:
    kenlm = pytest.importorskip("kenlm")
    path = tmp_path / "lm.arpa"
    build_arpa(CORPUS, path, order=4, prune=(0, 0, 1), progress=False)
    ours = read_arpa(path)
    lm = kenlm.Model(str(path))
    assert lm.order == 4
    for sentence in ["AND GOD SAID", "THE LORD IS MY SHEPHERD", "QWERTY AND THE UNKNOWN WORDS", "AND AND AND"]:
        words, history, total = sentence.split(), ["<s>"], 0.0
        for word in [*words, "</s>"]:
            total += math.log10(ours.prob(word, history))
            history.append(word)
        assert lm.score(sentence, bos=True, eos=True) == pytest.approx(total, abs=1e-3), sentence
    language_model = pytest.importorskip("pyctcdecode.language_model")
    assert language_model.load_unigram_set_from_arpa(str(path)) == set(read_arpa_vocabulary(path)) | {
        "<s>",
        "</s>",
        "<unk>",
    }


def test_bad_inputs(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="LM text corpus not found"):
        build_arpa(tmp_path / "missing.txt", tmp_path / "lm.arpa", progress=False)
    reserved = tmp_path / "reserved.txt"
    reserved.write_text("HELLO <s> WORLD\n")
    with pytest.raises(ValueError, match=r"reserved.txt:1: .*reserved token"):
        read_sentences(reserved, progress=False)
    with pytest.raises(FileNotFoundError, match="ARPA language model not found"):
        read_arpa(tmp_path / "missing.arpa")
    truncated = tmp_path / "truncated.arpa"
    truncated.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0\t<s>\t0\n-1.0\t</s>\t0\n\\end\\\n")
    with pytest.raises(ValueError, match="header promises 5 1-grams, file holds 2"):
        read_arpa(truncated)
    with pytest.raises(ValueError, match="order must be"):
        build_arpa(CORPUS, tmp_path / "lm.arpa", order=0, progress=False)
