"""Checkpoints that are whole or absent, and which one a run resumes from.

A checkpoint is written into a hidden staging folder (``.staging-checkpoint-N``) and renamed to
``checkpoint-N`` only once every file is on disk (:class:`AtomicCheckpointMixin`), so a kill during a save
leaves the previous checkpoints untouched and at worst a staging folder that nothing reads. A save that
fails (a full disk: :class:`CheckpointDiskFullError` says so) removes its staging folder. The final model
(``save_model`` into the output folder) is staged the same way (``.staging-model``) and its files moved in
once all are written, weights first and ``config.json`` last: a Ctrl-C or kill in that save leaves the
folder's earlier model, or none, never half a weights file that ``from_pretrained`` would fail on.

``latest`` means the newest *complete* ``checkpoint-*`` of the output folder
(:func:`latest_complete_checkpoint`): folders written by other tools or older versions that lack their
trainer state or weights, hold an empty or truncated file (weights, optimizer, scheduler, RNG states) or
NaN/inf weights, are skipped and logged.

The Trainer restores weights, optimizer, scheduler, RNG states, the step and stateful
callbacks (the time budget) from a checkpoint folder; both trainers find that folder here.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import zipfile
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer_utils import rotate_checkpoints

from hf_w2v2.training.hf_internals import save_checkpoint_into

logger = logging.getLogger(__name__)

LATEST = ("latest", "last", "true", "True")
PREFIX = "checkpoint"
STAGING_PREFIX = ".staging-"  # hidden: the Trainer's own checkpoint search ignores it
TRAINER_STATE = "trainer_state.json"
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
    "pytorch_model_fsdp.bin",
)
_CHECKPOINT_RE = re.compile(rf"^{PREFIX}-(\d+)$")
_WEIGHT_SHARD_RE = re.compile(r"^(model|pytorch_model|adapter_model)-\d+-of-\d+\.(safetensors|bin)$")
MODEL_STAGING = f"{STAGING_PREFIX}model"  # where save_model writes the final model before moving it in
CONFIG_FILE = "config.json"  # moved in last: a folder with it has the weights it describes
TORCH_FILE_SUFFIXES = (".pt", ".pth", ".bin")  # torch.save archives: optimizer, scheduler, scaler, RNG states
DISK_FULL_MARKERS = ("basic_ios::clear", "iostream error", "file write failed", "No space left on device")
"""What torch's C++ writer says when a write fails (it gives no errno): read as a full disk during a save."""


class CheckpointDiskFullError(OSError):
    """A checkpoint could not be written: the disk (or quota) of the output folder is full."""


def damaged_file_problem(path: str) -> str | None:
    """Why a checkpoint file cannot be read back (truncated or overwritten), or None.

    Reads only headers and indexes (the safetensors header, the zip directory of a ``torch.save``
    archive), then checks the weights of ``model.safetensors`` for NaN/inf (a diverged run).
    """
    name = os.path.basename(path)
    if name.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, framework="pt") as handle:
                keys = handle.keys()
                bad = [key for key in keys if not _finite(handle.get_tensor(key))]
        except (SafetensorError, OSError, RuntimeError) as error:
            return f"{name} is damaged or truncated ({error})"
        if bad:
            return f"{name} holds NaN/inf weights ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})"
    elif name.endswith(TORCH_FILE_SUFFIXES):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError) as error:
            return f"{name} is damaged or truncated ({error})"
    return None


def _finite(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def checkpoint_problem(folder: str) -> str | None:
    """Why ``folder`` cannot be resumed from (missing trainer state or weights, an empty file), or None."""
    state = os.path.join(folder, TRAINER_STATE)
    if not os.path.isfile(state):
        return f"no {TRAINER_STATE}"
    try:
        with open(state, encoding="utf-8") as handle:
            json.load(handle)
    except (OSError, ValueError) as err:
        return f"unreadable {TRAINER_STATE} ({err})"
    names = os.listdir(folder)
    has_fsdp_shards = any(name.startswith("pytorch_model_fsdp") for name in names)
    if not has_fsdp_shards and not any(name in names for name in WEIGHT_FILES):
        return f"no weights file (looked for {', '.join(WEIGHT_FILES[:2])}, ...)"
    empty = sorted(
        name
        for name in names
        if os.path.isfile(os.path.join(folder, name)) and not os.path.getsize(os.path.join(folder, name))
    )
    if empty:
        return f"empty file(s) {empty}"
    for name in sorted(names):
        if os.path.isfile(os.path.join(folder, name)):
            problem = damaged_file_problem(os.path.join(folder, name))
            if problem is not None:
                return problem
    return None


def latest_complete_checkpoint(output_dir: str) -> tuple[str | None, list[str]]:
    """The newest complete ``checkpoint-N`` of ``output_dir`` and one line per folder skipped on the way."""
    if not os.path.isdir(output_dir):
        return None, []
    steps = {int(m.group(1)): name for name in os.listdir(output_dir) if (m := _CHECKPOINT_RE.match(name))}
    skipped = [
        f"{os.path.join(output_dir, name)}: an interrupted save (staging folder)"
        for name in sorted(os.listdir(output_dir))
        if name.startswith(STAGING_PREFIX)
    ]
    for step in sorted(steps, reverse=True):
        folder = os.path.join(output_dir, steps[step])
        if not os.path.isdir(folder):
            continue
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder, skipped
        skipped.append(f"{folder}: {problem}")
    return None, skipped


def resolve_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """``latest``/``True`` -> newest complete ``checkpoint-*`` in ``output_dir``; a path is checked; None stays None."""
    if resume_from_checkpoint in (None, False, "", "false", "False", "none", "None"):
        return None
    if resume_from_checkpoint is True or resume_from_checkpoint in LATEST:
        last, skipped = latest_complete_checkpoint(output_dir)
        for line in skipped:
            logger.warning("resume: skipped %s", line)
        if last is None:
            detail = f" (skipped: {'; '.join(skipped)})" if skipped else ""
            raise ValueError(
                f"resume_from_checkpoint={resume_from_checkpoint!r} but {output_dir} has no complete "
                f"checkpoint-* folder{detail}"
            )
        return last
    path = str(resume_from_checkpoint)
    if not os.path.isdir(path):
        raise ValueError(f"checkpoint folder not found: {path}")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ValueError(f"cannot resume from {path}: {problem} (an interrupted save?); pass an older checkpoint")
    return path


class AtomicCheckpointMixin(Trainer):
    """A ``Trainer`` whose checkpoints appear all at once: written to a staging folder, then renamed.

    The stock save writes ``checkpoint-N`` file by file; a kill in between left folders that
    ``latest`` picked and could not load. Here every process writes into
    ``OUTPUT/.staging-checkpoint-N/checkpoint-N`` (the Trainer's own layout, one level down),
    all processes wait, then the main process renames it to ``OUTPUT/checkpoint-N`` and rotates
    old checkpoints. Hyper-parameter search trials keep the stock behaviour.
    """

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        if trial is not None:
            super()._save_checkpoint(model, trial)
            return
        run_dir = self.args.output_dir or ""
        name = f"{PREFIX}-{self.state.global_step}"
        staging_root = os.path.join(run_dir, f"{STAGING_PREFIX}{name}")
        staged, final = os.path.join(staging_root, name), os.path.join(run_dir, name)
        if self.args.should_save:  # what an earlier, interrupted save of this step left
            shutil.rmtree(staging_root, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        limit, self.args.save_total_limit = self.args.save_total_limit, None  # rotate after the rename
        try:
            save_checkpoint_into(
                self, staging_root, lambda: super(AtomicCheckpointMixin, self)._save_checkpoint(model, None)
            )
        except (OSError, RuntimeError) as error:
            shutil.rmtree(staging_root, ignore_errors=True)  # nothing half-written stays behind
            if is_disk_full(error):
                raise CheckpointDiskFullError(errno.ENOSPC, disk_full_message(run_dir, name, error)) from error
            raise
        finally:
            self.args.save_total_limit = limit
        self.accelerator.wait_for_everyone()  # every shard is written
        if self.args.should_save:
            publish_checkpoint(staged, final)
            shutil.rmtree(staging_root, ignore_errors=True)
            if self.state.best_model_checkpoint and self.state.best_model_checkpoint.startswith(staging_root):
                self.state.best_model_checkpoint = final
                self.state.save_to_json(os.path.join(final, TRAINER_STATE))
            rotate_checkpoints(run_dir, limit, self.state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The model's files written to a staging folder in ``output_dir``, then moved in (:func:`publish_model`);
        a checkpoint's (``_save_checkpoint`` stages the whole folder) are written as stock writes them."""
        if _internal_call and output_dir is not None:
            super().save_model(output_dir, _internal_call)
            return
        folder = str(output_dir or self.args.output_dir)
        staging = os.path.join(folder, MODEL_STAGING)
        if self.args.should_save:  # what an earlier, interrupted save left
            shutil.rmtree(staging, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        push, self.args.push_to_hub = self.args.push_to_hub, False  # pushed once the files are in place
        try:
            super().save_model(staging, _internal_call)
        except BaseException as error:  # Ctrl-C too: nothing half-written stays behind
            if self.args.should_save:
                shutil.rmtree(staging, ignore_errors=True)
            if is_disk_full(error):
                raise CheckpointDiskFullError(errno.ENOSPC, disk_full_message(folder, "the model", error)) from error
            raise
        finally:
            self.args.push_to_hub = push
        self.accelerator.wait_for_everyone()  # every rank's part is written
        if self.args.should_save:
            publish_model(staging, folder)
            shutil.rmtree(staging, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        if push and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)


def is_weight_file(name: str) -> bool:
    """A file of a model's weights (one of :data:`WEIGHT_FILES`, or a shard of them)."""
    return name in WEIGHT_FILES or _WEIGHT_SHARD_RE.match(name) is not None


def publish_model(staged: str, folder: str) -> None:
    """Move every file of the fully written ``staged`` folder into ``folder``: the weights first, then the
    weights of an earlier save that this one lacks are removed (a sharded model saved over a single file),
    then the other files, ``config.json`` last. Each move is a rename: a reader never meets half a file."""
    names = sorted(os.listdir(staged), key=lambda name: (name == CONFIG_FILE, name))
    weights = [name for name in names if is_weight_file(name)]
    for name in weights:
        os.replace(os.path.join(staged, name), os.path.join(folder, name))
    for old in os.listdir(folder):
        if is_weight_file(old) and old not in weights:
            os.remove(os.path.join(folder, old))
    for name in names:
        if name not in weights:
            target = os.path.join(folder, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staged, name), target)


def is_disk_full(error: BaseException | None) -> bool:
    """An ``OSError`` ENOSPC/EDQUOT, or torch's C++ writer failing (it reports no errno), here or in the
    errors it was raised from (torch's writer raises again while closing a file it could not write)."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(error, RuntimeError) and any(marker in str(error) for marker in DISK_FULL_MARKERS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def disk_full_message(run_dir: str, name: str, error: BaseException) -> str:
    """No space left on device, the folder, what is free there, and what to do."""
    try:
        free = f"{shutil.disk_usage(run_dir or '.').free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return (
        f"no space left on device: saving {name} into {run_dir} failed ({free}; {error}). The unfinished "
        "checkpoint was removed and earlier checkpoints are intact: free space or lower --save_total_limit, "
        "then resume with --resume_from_checkpoint latest"
    )


def publish_checkpoint(staged: str, final: str) -> None:
    """Rename a fully written ``staged`` folder to ``final`` (an older folder of that name is replaced)."""
    if os.path.exists(final):  # the same step saved twice (e.g. a save at the end of training)
        old = os.path.join(os.path.dirname(final), f"{STAGING_PREFIX}{os.path.basename(final)}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, final)
