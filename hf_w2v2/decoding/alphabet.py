"""The CTC output alphabet: one label per vocabulary id, in id order.

A wav2vec 2.0 CTC vocabulary (``Wav2Vec2CTCTokenizer``) holds ``[PAD]`` (id 0, used as the
CTC blank), ``[UNK]``, ``|`` (the word delimiter) and one entry per character. Decoders
want plain labels instead, the convention pyctcdecode uses: ``""`` for the blank, ``" "``
for the word delimiter and ``"⁇"`` for the unknown token. Other special tokens (``<s>``,
``</s>``) keep their spelling; a CTC model never learns to emit them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BLANK_LABEL = ""
DELIMITER_LABEL = " "
UNK_LABEL = "⁇"  # what pyctcdecode expects for an unknown-character token


@dataclass(frozen=True)
class CTCAlphabet:
    """Labels of a CTC vocabulary in id order, with the ids of its special entries."""

    labels: tuple[str, ...]
    blank_id: int
    delimiter_id: int | None
    unk_id: int | None

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            dupes = sorted({label for label in self.labels if self.labels.count(label) > 1})
            raise ValueError(f"CTC alphabet has duplicate labels {dupes}; each id needs its own label")
        if self.labels[self.blank_id] != BLANK_LABEL:
            raise ValueError(f"label of the blank id {self.blank_id} must be '', got {self.labels[self.blank_id]!r}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def characters(self) -> set[str]:
        """Single characters the model can emit (blank, delimiter and special tokens excluded)."""
        special = {self.blank_id, self.delimiter_id, self.unk_id}
        return {label for i, label in enumerate(self.labels) if i not in special and len(label) == 1}

    def spell_check(self, words: Iterable[str]) -> tuple[int, int, set[str]]:
        """``(n_words, n_unspellable, missing_chars)``: words holding characters the alphabet lacks."""
        chars = self.characters
        n_words, n_bad, missing = 0, 0, set()
        for word in words:
            n_words += 1
            bad = set(word) - chars
            if bad:
                n_bad += 1
                missing |= bad
        return n_words, n_bad, missing

    @classmethod
    def from_vocab(
        cls,
        vocab: Mapping[str, int],
        blank_token: str = "[PAD]",
        delimiter_token: str | None = "|",
        unk_token: str | None = "[UNK]",
    ) -> CTCAlphabet:
        """Alphabet from a ``token -> id`` mapping (``vocab.json`` of a CTC tokenizer).

        Raises:
            ValueError: ids are not ``0..V-1`` or the blank token is missing.
        """
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"vocabulary ids must be 0..{len(ids) - 1} without gaps or repeats")
        if blank_token not in vocab:
            raise ValueError(f"CTC blank token {blank_token!r} is not in the vocabulary")
        by_id = {i: token for token, i in vocab.items()}
        mapping = {blank_token: BLANK_LABEL, delimiter_token: DELIMITER_LABEL, unk_token: UNK_LABEL}
        labels = tuple(mapping.get(by_id[i], by_id[i]) for i in range(len(ids)))
        return cls(
            labels=labels,
            blank_id=vocab[blank_token],
            delimiter_id=vocab.get(delimiter_token) if delimiter_token is not None else None,
            unk_id=vocab.get(unk_token) if unk_token is not None else None,
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> CTCAlphabet:
        """Alphabet of a ``Wav2Vec2CTCTokenizer`` (or a processor holding one).

        The pad token is the CTC blank, ``word_delimiter_token`` the word boundary.
        """
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # accept a Wav2Vec2Processor
        return cls.from_vocab(
            tokenizer.get_vocab(),
            blank_token=tokenizer.pad_token,
            delimiter_token=getattr(tokenizer, "word_delimiter_token", None),
            unk_token=tokenizer.unk_token,
        )
