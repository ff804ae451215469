"""Resuming a fine-tuning run: refuse a checkpoint whose vocabulary differs from this run's.

The Trainer restores weights, optimizer, scheduler, RNG states and the step from a
checkpoint folder. The vocabulary is ours to guard: the head's row ``i`` means token ``i``
of ``vocab.json``, so continuing with other ids would silently train a different task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

VOCAB_FILE = "vocab.json"


def checkpoint_vocabulary(checkpoint: str | os.PathLike) -> dict[str, int]:
    """The ``vocab.json`` saved with ``checkpoint`` (or in its parent output folder)."""
    for folder in (Path(checkpoint), Path(checkpoint).parent):
        if (folder / VOCAB_FILE).is_file():
            vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
            return vocab
    raise ValueError(
        f"checkpoint {checkpoint} has no {VOCAB_FILE} (nor its parent folder): cannot verify that the "
        "vocabulary matches; pass --tokenizer_name_or_path with the run's tokenizer folder"
    )


def vocabulary_difference(saved: Mapping[str, int], current: Mapping[str, int], limit: int = 10) -> str:
    """A readable summary of how two token -> id maps differ ('' when equal)."""
    if dict(saved) == dict(current):
        return ""
    only_saved = sorted(set(saved) - set(current))
    only_current = sorted(set(current) - set(saved))
    moved = sorted(t for t in set(saved) & set(current) if saved[t] != current[t])
    parts = [f"{len(saved)} tokens in the checkpoint vs {len(current)} now"]
    if only_saved:
        parts.append(f"only in the checkpoint: {only_saved[:limit]}")
    if only_current:
        parts.append(f"only in the new vocabulary: {only_current[:limit]}")
    if moved:
        parts.append("different ids: " + ", ".join(f"{t!r} {saved[t]}->{current[t]}" for t in moved[:limit]))
    return "; ".join(parts)


def check_resume_vocabulary(checkpoint: str | os.PathLike, current: Mapping[str, int]) -> None:
    """Raise ``ValueError`` when ``current`` (the vocabulary this run would use) differs from the checkpoint's."""
    diff = vocabulary_difference(checkpoint_vocabulary(checkpoint), current)
    if diff:
        raise ValueError(
            f"cannot resume from {checkpoint}: its vocabulary differs from this run's ({diff}). The CTC head's "
            "rows are tied to token ids; resume with the same training transcripts / --tokenizer_name_or_path, "
            "or start a new run (e.g. --model_name_or_path CHECKPOINT without --resume_from_checkpoint)."
        )
