"""Which checkpoint a run resumes from: ``latest`` means the newest ``checkpoint-*`` of the output folder.

The Trainer restores weights, optimizer, scheduler, RNG states, the step and stateful
callbacks (the time budget) from a checkpoint folder; both trainers find that folder here.
"""

from __future__ import annotations

import os

from transformers.trainer_utils import get_last_checkpoint

LATEST = ("latest", "last", "true", "True")


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """``latest``/``True`` -> newest ``checkpoint-*`` in ``output_dir``; a path is checked; None stays None."""
    if resume_from_checkpoint in (None, False, "", "false", "False", "none", "None"):
        return None
    if resume_from_checkpoint is True or resume_from_checkpoint in LATEST:
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise ValueError(
                f"resume_from_checkpoint={resume_from_checkpoint!r} but {output_dir} has no checkpoint-* folder"
            )
        return last
    path = str(resume_from_checkpoint)
    if not os.path.isdir(path):
        raise ValueError(f"checkpoint folder not found: {path}")
    return path
