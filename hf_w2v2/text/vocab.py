"""Character vocabulary for CTC fine-tuning and the matching transformers tokenizer.

Shape legend: V vocab.

Order of ids (deterministic, independent of the order of the transcripts):

    0  [PAD]   the CTC blank; also the model's ``pad_token_id`` (default 0)
    1  [UNK]   any character not in the vocabulary
    2  |       word delimiter (the tokenizer maps each space to it)
    3… characters, sorted by Unicode code point (so ``'`` < ``A`` < ``Z`` < ``a`` < ``é``)

Characters are collected from normalised transcripts (see
:class:`hf_w2v2.text.normalize.TextNormalizer`); the space is never a vocabulary entry.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from transformers import Wav2Vec2CTCTokenizer

from hf_w2v2.text.normalize import WORD_DELIMITER

PAD_TOKEN = "[PAD]"  # id 0, the CTC blank
UNK_TOKEN = "[UNK]"  # id 1
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, WORD_DELIMITER)
VOCAB_FILE = "vocab.json"


def count_characters(texts: Iterable[str]) -> Counter[str]:
    """Occurrences of each character in ``texts``, spaces excluded."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text)
    counts.pop(" ", None)
    return counts


def build_vocab(texts: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Map tokens to ids for already-normalised ``texts`` (order in the module docstring).

    Args:
        texts: normalised transcripts.
        min_count: characters seen fewer times are left out (they become ``[UNK]``);
            useful against stray symbols in large noisy corpora.

    Raises:
        ValueError: no character survives, or ``min_count < 1``.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = count_characters(texts)
    chars = sorted(ch for ch, n in counts.items() if n >= min_count and ch not in SPECIAL_TOKENS)
    if not chars:
        raise ValueError("no characters to build a vocabulary from: every transcript is empty after normalisation")
    tokens = list(SPECIAL_TOKENS) + chars
    return {token: index for index, token in enumerate(tokens)}


def save_vocab(vocab: Mapping[str, int], directory: str | os.PathLike) -> Path:
    """Write ``vocab`` as ``directory/vocab.json`` (ids ascending) and return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / VOCAB_FILE
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    path.write_text(json.dumps(ordered, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def load_tokenizer(vocab_file: str | os.PathLike) -> Wav2Vec2CTCTokenizer:
    """A character CTC tokenizer over ``vocab_file`` with this module's special tokens.

    No BOS/EOS tokens (CTC has none), no lower-casing (normalisation is done before).
    ``len(tokenizer)`` equals the number of entries in ``vocab_file``.
    """
    vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
    for token in SPECIAL_TOKENS:
        if token not in vocab:
            raise ValueError(f"{vocab_file} has no {token!r} entry; build it with build_vocab()")
    tokenizer = Wav2Vec2CTCTokenizer(
        os.fspath(vocab_file),
        unk_token=UNK_TOKEN,
        pad_token=PAD_TOKEN,
        word_delimiter_token=WORD_DELIMITER,
        bos_token=None,
        eos_token=None,
        do_lower_case=False,
    )
    if len(tokenizer) != len(vocab):
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but {vocab_file} has {len(vocab)} entries")
    return tokenizer


def build_tokenizer(texts: Iterable[str], directory: str | os.PathLike, min_count: int = 1) -> Wav2Vec2CTCTokenizer:
    """Build the vocabulary of normalised ``texts``, write ``directory/vocab.json``, return the tokenizer.

    Use ``len(tokenizer)`` as the CTC head's ``vocab_size`` and ``tokenizer.pad_token_id``
    (always 0) as its ``pad_token_id`` / blank.
    """
    path = save_vocab(build_vocab(texts, min_count=min_count), directory)
    return load_tokenizer(path)


def vocab_size(tokenizer: Wav2Vec2CTCTokenizer) -> int:
    """Number of output classes V of a CTC head for ``tokenizer`` (blank included)."""
    return len(tokenizer)
