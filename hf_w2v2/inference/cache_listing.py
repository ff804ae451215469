"""What :func:`~hf_w2v2.inference.optimize.optimize` keeps on disk, and removing it (``hf-w2v2 cache``).

Each model measured on a machine leaves a choice file (``KEY.json``) and a folder of built graphs (``KEY/``).
The measurement builds the ONNX, OpenVINO and PT2E files of every path, about three times the model's float32
weights (43 MB for the shipped model, about 1 GB for BASE); the next start that reads the choice keeps the
chosen path's only (none for the eager torch paths, 190 MB for BASE's ONNX int8). Fine-tuning and transcribing
with ``--precision auto`` after each run still adds one per checkpoint, so the folder grows until it is pruned.
An entry last used (read or measured) long ago can go: the next use of its model measures again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass

from hf_w2v2.files import remove_stale_partials

TIMINGS_FOLDER = "timings"  # per architecture, a few KB each: kept by --older-than, removed by a full clear
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class CacheEntry:
    """One model's measurement: its key, model name (when recorded), chosen paths, bytes on disk, last use."""

    key: str
    model: str
    chosen: str
    bytes: int
    last_used: float  # seconds since the epoch (the choice file's modification time)


def folder_bytes(path: str) -> int:
    """Bytes of the files under ``path`` (0 when it is missing)."""
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def cache_entries(folder: str) -> list[CacheEntry]:
    """The measurements in ``folder`` (an optimize cache), most recently used first."""
    entries = []
    names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    for name in sorted(names):
        key, extension = os.path.splitext(name)
        path = os.path.join(folder, name)
        if extension != ".json":  # graphs of a measurement that kept no choice (interrupted, a disk nearly full)
            if os.path.isdir(path) and name != TIMINGS_FOLDER and f"{name}.json" not in names:
                entries.append(CacheEntry(name, "?", "none (not finished)", folder_bytes(path), os.path.getmtime(path)))
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            ranking, recurring = list(data.get("ranking") or ["?"]), list(data.get("recurring") or [])
            chosen = ranking[0] if not recurring or recurring[0] == ranking[0] else f"{ranking[0]} / {recurring[0]}"
            model = str(data.get("model") or "?")
        except (OSError, ValueError, AttributeError, TypeError):  # damaged: listed, and removable
            chosen, model = "unreadable", "?"
        size = os.path.getsize(path) + folder_bytes(os.path.join(folder, key))
        entries.append(CacheEntry(key, model, chosen, size, os.path.getmtime(path)))
    return sorted(entries, key=lambda entry: -entry.last_used)


def remove_entries(folder: str, older_than_days: float | None = None) -> tuple[int, int]:
    """Remove the measurements in ``folder`` last used more than ``older_than_days`` ago (all: None, the
    architectures' timings too), and partial files of ended processes; returns (entries, bytes) removed."""
    now, count, freed = time.time(), 0, 0
    for entry in cache_entries(folder):
        if older_than_days is not None and now - entry.last_used <= older_than_days * SECONDS_PER_DAY:
            remove_stale_partials(os.path.join(folder, entry.key))
            continue
        shutil.rmtree(os.path.join(folder, entry.key), ignore_errors=True)  # (a graphs folder alone: no .json)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, f"{entry.key}.json"))
        count, freed = count + 1, freed + entry.bytes
    if older_than_days is None:
        timings = os.path.join(folder, TIMINGS_FOLDER)
        freed += folder_bytes(timings)
        shutil.rmtree(timings, ignore_errors=True)
    return count, freed
