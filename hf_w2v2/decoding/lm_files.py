"""Opening n-gram LM files and checking that they fit the CTC alphabet.

A CTC model can only spell words from its own characters. An LM built from text with
other casing or characters (a lower-case LM for an upper-case vocabulary, say) scores
every hypothesis as unknown and silently ruins decoding, so we refuse it up front.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.arpa import read_arpa_vocabulary
from hf_w2v2.optional import require
from hf_w2v2.quiet import native_output_silenced

logger = logging.getLogger(__name__)


def load_kenlm(path: str | os.PathLike):
    """Open an ARPA or KenLM binary file with ``kenlm``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImportError: the ``kenlm`` module is not installed.
        ValueError: KenLM cannot parse the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"language model file not found: {path}")
    kenlm = require("kenlm", "n-gram decoding", "kenlm-ex (KenLM as prebuilt wheels; or 'hf_w2v2[lm]')")
    try:
        with native_output_silenced():  # KenLM's "Reading FILE" ruler, under --quiet
            return kenlm.Model(path)
    except (OSError, RuntimeError) as err:
        raise ValueError(f"KenLM cannot read the language model {path}: {err}") from err


def read_unigrams(path: str | os.PathLike) -> list[str]:
    """The LM's words, from the unigram section of an ARPA file.

    A binary KenLM file does not list its words: pass ``unigrams`` to the decoder
    yourself, or decoding runs without the word list (worse on partial words).
    """
    path = os.fspath(path)
    if path.endswith(".arpa"):
        return read_arpa_vocabulary(path)
    logger.warning("%s is not an ARPA file; pass its word list as `unigrams` for best results", path)
    return []


def check_lm_alphabet(
    unigrams: Sequence[str], alphabet: CTCAlphabet, lm_path: str, max_unspellable: float = 0.1
) -> None:
    """Refuse an LM whose words the model cannot spell.

    Raises:
        ValueError: more than ``max_unspellable`` of the LM's words use characters that
            are not in the alphabet. Fewer such words only log a warning.
    """
    n_words, n_bad, missing = alphabet.spell_check(unigrams)
    if n_words == 0 or n_bad == 0:
        return
    shown = "".join(sorted(missing)[:20])
    fraction = n_bad / n_words
    if fraction <= max_unspellable:
        logger.warning("%d of %d LM words use characters missing from the CTC alphabet: %r", n_bad, n_words, shown)
        return
    hint = ""
    letters = [c for c in missing if c.isalpha()]
    for case, convert in (("upper", str.upper), ("lower", str.lower)):
        if letters and all(convert(c) in alphabet.characters for c in letters):
            hint = f"; the CTC vocabulary is {case}-case: build the LM from {case}-cased text"
            break
    raise ValueError(
        f"language model {lm_path} does not match the CTC vocabulary: {n_bad} of {n_words} words "
        f"({fraction:.0%}) use characters the model cannot emit ({shown!r}){hint}"
    )
