"""Transcript normalisation (hf_w2v2.text.normalize)."""

from __future__ import annotations

import re

import pytest

from hf_w2v2.text.normalize import TextNormalizer, normalize_texts


def test_defaults_upper_case_strip_punctuation_keep_apostrophe() -> None:
    assert TextNormalizer()("  Don’t  stop—ok?!  it's  ") == "DON'T STOP OK IT'S"


def test_nfkc_folds_compatibility_forms() -> None:
    assert TextNormalizer()("ｆｕｌｌ ﬁne") == "FULL FINE"  # full-width letters, fi ligature
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert TextNormalizer(case="none")(decomposed) == composed


@pytest.mark.parametrize(("case", "expected"), [("upper", "ABC DEF"), ("lower", "abc def"), ("none", "AbC dEf")])
def test_case_folding_is_configurable(case: str, expected: str) -> None:
    assert TextNormalizer(case=case)("AbC dEf") == expected


def test_word_delimiter_and_separators_become_spaces() -> None:
    assert TextNormalizer()("well-known a|b c/d\tx\ny") == "WELL KNOWN A B C D X Y"


def test_apostrophes_can_be_dropped() -> None:
    assert TextNormalizer(keep_apostrophes=False)("it’s Bob's") == "ITS BOBS"


def test_chars_to_ignore_as_set_and_regex() -> None:
    assert TextNormalizer(chars_to_ignore=frozenset("x"))("a.x,b") == "A.,B"
    assert TextNormalizer(chars_to_ignore=re.compile(r"[0-9]+"))("room 101, ok") == "ROOM , OK"
    with pytest.raises(ValueError, match="chars_to_ignore"):
        TextNormalizer(chars_to_ignore=",.")  # a bare str is ambiguous


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(ValueError, match="case"):
        TextNormalizer(case="title")
    with pytest.raises(ValueError, match="str"):
        TextNormalizer()(None)  # type: ignore[arg-type]


def test_punctuation_only_becomes_empty_and_is_idempotent() -> None:
    normalizer = TextNormalizer()
    assert normalizer(" ?! ... ") == ""
    texts = ["Hello, World!", "É-tude  «quoted»"]
    once = normalize_texts(texts, normalizer)
    assert normalize_texts(once, normalizer) == once
