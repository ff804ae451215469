"""Transcript normalisation, character vocabulary / tokenizer, and coverage reports."""

from hf_w2v2.text.coverage import CoverageReport, coverage_report
from hf_w2v2.text.normalize import DEFAULT_CHARS_TO_IGNORE, TextNormalizer, normalize_texts
from hf_w2v2.text.vocab import (
    PAD_TOKEN,
    UNK_TOKEN,
    build_tokenizer,
    build_vocab,
    count_characters,
    load_tokenizer,
    save_vocab,
    vocab_size,
)

__all__ = [
    "DEFAULT_CHARS_TO_IGNORE",
    "PAD_TOKEN",
    "UNK_TOKEN",
    "CoverageReport",
    "TextNormalizer",
    "build_tokenizer",
    "build_vocab",
    "count_characters",
    "coverage_report",
    "load_tokenizer",
    "normalize_texts",
    "save_vocab",
    "vocab_size",
]
