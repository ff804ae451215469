"""Transcript normalisation before character-level CTC tokenisation.

The steps, in order (each one documented on :class:`TextNormalizer`):

1. Unicode NFKC (full-width letters, ligatures and compatibility forms become their
   plain equivalents, so one letter has one code point sequence);
2. typographic apostrophes (’ ʼ ‘ ` ´) become ``'``; apostrophes are kept by default
   because they change words ("it's" / "its");
3. ``chars_to_ignore`` are deleted (matched against the text as written, before case folding);
4. case folding (``"upper"`` by default, the LibriSpeech / wav2vec2-base-960h convention);
   ``word_separators`` (hyphens, dashes, slashes, and the word delimiter ``|`` itself)
   become spaces;
5. whitespace runs collapse to one space and the ends are stripped.

The tokenizer then maps each space to the word delimiter token ``|``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

CaseFolding = Literal["upper", "lower", "none"]

# Punctuation that carries no sound; the apostrophe is deliberately absent.
DEFAULT_CHARS_TO_IGNORE = frozenset(',?.!;:"“”„«»‹›()[]{}<>%‰*#~^@&+=…·•¿¡‚')
# Characters that join or separate words: replaced with a space instead of deleted,
# so "well-known" becomes "well known" rather than "wellknown".
DEFAULT_WORD_SEPARATORS = frozenset("-‐‑‒–—―/\\_|")
APOSTROPHE_VARIANTS = frozenset("’ʼ‘`´′")  # mapped to "'" (U+0027)
WORD_DELIMITER = "|"  # the tokenizer's word delimiter; never left inside a normalised text

_WHITESPACE = re.compile(r"\s+")


def _char_class(chars: Iterable[str]) -> re.Pattern[str] | None:
    """A regex matching any of ``chars`` (single characters or literal strings)."""
    items = sorted(set(chars), key=lambda s: (-len(s), s))  # longest first: literal strings win
    if not items:
        return None
    return re.compile("|".join(re.escape(item) for item in items))


@dataclass(frozen=True)
class TextNormalizer:
    """Callable that normalises one transcript; see the module docstring for the steps.

    Example:
        >>> TextNormalizer()("  Don’t  stop—ok?! ")
        "DON'T STOP OK"
    """

    case: CaseFolding = "upper"
    """Case folding: ``"upper"``, ``"lower"`` or ``"none"`` (keep the case as written)."""
    chars_to_ignore: frozenset[str] | re.Pattern[str] = DEFAULT_CHARS_TO_IGNORE
    """Deleted from the text: a set of characters (or literal strings), or a compiled regex
    whose matches are deleted (as in ``re.compile(r"[\\,\\?\\.\\!\\-\\;\\:\\"]")``). Applied
    before case folding, so it matches the text as written."""
    word_separators: frozenset[str] = DEFAULT_WORD_SEPARATORS
    """Characters replaced with a space. ``|`` is always treated as one."""
    keep_apostrophes: bool = True
    """Keep ``'`` (typographic variants are mapped to it first); ``False`` deletes them."""
    unicode_form: Literal["NFKC", "NFC", "NFKD", "NFD"] = "NFKC"
    """Unicode normalisation form applied first."""
    _ignore: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _separate: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.case not in ("upper", "lower", "none"):
            raise ValueError(f"case must be 'upper', 'lower' or 'none', got {self.case!r}")
        if isinstance(self.chars_to_ignore, str):
            raise ValueError(
                "chars_to_ignore must be a set of characters or a compiled regex, not a str "
                f"({self.chars_to_ignore!r}); use frozenset(...) or re.compile(...)"
            )
        ignore: re.Pattern[str] | None = (
            self.chars_to_ignore if isinstance(self.chars_to_ignore, re.Pattern) else _char_class(self.chars_to_ignore)
        )
        object.__setattr__(self, "_ignore", ignore)
        object.__setattr__(self, "_separate", _char_class(set(self.word_separators) | {WORD_DELIMITER}))

    def __call__(self, text: str) -> str:
        """Normalise one transcript; the result may be empty."""
        if not isinstance(text, str):
            raise ValueError(f"transcript must be a str, got {type(text).__name__}: {text!r}")
        text = unicodedata.normalize(self.unicode_form, text)
        text = "".join("'" if ch in APOSTROPHE_VARIANTS else ch for ch in text)
        if not self.keep_apostrophes:
            text = text.replace("'", "")
        if self._ignore is not None:
            text = self._ignore.sub("", text)
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self._separate is not None:
            text = self._separate.sub(" ", text)
        return _WHITESPACE.sub(" ", text).strip()


def normalize_texts(texts: Iterable[str], normalizer: TextNormalizer | None = None) -> list[str]:
    """Normalise every transcript with ``normalizer`` (default :class:`TextNormalizer`)."""
    normalizer = normalizer or TextNormalizer()
    return [normalizer(text) for text in texts]
