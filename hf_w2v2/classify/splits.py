"""Split a labelled table into manifests by rules on its columns (e.g. FSDD's usual split: takes 0-4 are test).

A rule is a comma-separated list of conditions, all of which must hold:
``COLUMN=VALUE``, ``COLUMN!=VALUE``, ``COLUMN<N``, ``COLUMN<=N``, ``COLUMN>N``, ``COLUMN>=N``
(numbers compared as numbers), ``COLUMN in A|B|C`` and ``COLUMN not in A|B|C``. Written
manifests are CSV files with the same columns and absolute audio paths in ``file_name``, which
``--train_data`` / ``--eval_data`` read. :func:`write_speed_perturbed` adds sped-up and slowed-down
copies of a manifest's clips (more speaker variety for small corpora).
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import soundfile as sf
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio
from hf_w2v2.data.paths import read_utf8
from hf_w2v2.data.perturb import speed_perturb

_OPS = {"<=": operator.le, ">=": operator.ge, "!=": operator.ne, "=": operator.eq, "<": operator.lt, ">": operator.gt}
_CONDITION = re.compile(r"^\s*(\w+)\s*(not in|in|<=|>=|!=|=|<|>)\s*(.+?)\s*$")


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV file (an audiofolder's ``metadata.csv``); one that is not UTF-8 is an error naming its line."""
    with io.StringIO(read_utf8(path, "manifest"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def write_table(rows: Sequence[Mapping[str, str]], output: str | os.PathLike, columns: Sequence[str]) -> None:
    """Write ``rows`` to the CSV file ``output`` (its folder made if needed), ``columns`` only, in that order."""
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def matches(row: Mapping[str, str], rule: str) -> bool:
    """Whether ``row`` satisfies every condition of ``rule`` (an empty rule matches everything)."""
    for condition in (c for c in rule.split(",") if c.strip()):
        found = _CONDITION.match(condition)
        if found is None:
            raise ValueError(
                f"bad condition {condition!r}: expected COLUMN OP VALUE, OP one of =, !=, <, <=, >, >=, in"
            )
        column, op, value = found.groups()
        if column not in row:
            raise ValueError(f"condition {condition!r} names no column of the table; columns are {sorted(row)}")
        cell = row[column]
        if op in ("in", "not in"):
            inside = cell in value.split("|")
            ok = inside if op == "in" else not inside
        elif op in ("=", "!="):
            ok = _OPS[op](cell, value)
        else:
            ok = _OPS[op](float(cell), float(value))
        if not ok:
            return False
    return True


def write_split(
    metadata: str | os.PathLike, rule: str, output: str | os.PathLike, audio_column: str = "file_name"
) -> int:
    """Write the rows of ``metadata`` matching ``rule`` to ``output`` (CSV, absolute audio paths); returns the count."""
    root = Path(metadata).resolve().parent
    rows = [dict(r) for r in read_table(metadata) if matches(r, rule)]
    if not rows:
        raise ValueError(f"no row of {metadata} matches {rule!r}")
    for row in rows:
        row[audio_column] = str(root / row[audio_column])
    write_table(rows, output, list(rows[0]))
    return len(rows)


def concat_manifests(inputs: list[str], output: str | os.PathLike) -> int:
    """Write the rows of several manifests (written by :func:`write_split`) into one, keeping their shared columns."""
    tables = [read_table(path) for path in inputs]
    columns = [c for c in tables[0][0] if all(c in t[0] for t in tables[1:])]
    if "file_name" not in columns:
        raise ValueError(f"{inputs} share no file_name column")
    write_table([row for table in tables for row in table], output, columns)
    return sum(len(t) for t in tables)


def write_speed_perturbed(
    manifest: str | os.PathLike,
    output: str | os.PathLike,
    factors: Sequence[float] = (0.9, 1.1),
    *,
    audio_column: str = "file_name",
    include_original: bool = True,
    progress: bool = True,
) -> int:
    """Write ``output``: the rows of ``manifest`` (from :func:`write_split`) and a speed-perturbed copy per factor.

    Copies are 16 kHz FLAC files in ``<output stem>_audio/`` named ``<row>-<clip>_sp<factor>.flac``; their rows
    keep every column (label, speaker, ...; ``duration`` and ``sample_rate`` become the copy's own) and gain
    ``speed`` (1 for the originals). Returns the row count.
    """
    if not factors or any(f <= 0 for f in factors):
        raise ValueError(f"speed factors must be positive, got {list(factors)}")
    rows = read_table(manifest)  # raises on an empty table
    if audio_column not in rows[0]:
        raise ValueError(f"{manifest} has no {audio_column!r} column")
    out = Path(output)
    audio_dir = out.parent / f"{out.stem}_audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    root = Path(manifest).resolve().parent
    sources = [root / row[audio_column] for row in rows]  # an absolute path stays as it is
    written = [{**row, audio_column: str(p), "speed": "1"} for row, p in zip(rows, sources)] if include_original else []
    for index, (row, source) in enumerate(
        tqdm(list(zip(rows, sources)), desc="speed perturbation", disable=not progress)
    ):
        audio = load_audio(source)
        for factor in factors:
            path = audio_dir / f"{index:06d}-{source.stem}_sp{factor:g}.flac"  # unique even for equal stems
            perturbed = speed_perturb(audio, factor)
            sf.write(path, perturbed, TARGET_SAMPLING_RATE, subtype="PCM_16")
            copy = {**row, audio_column: str(path.resolve()), "speed": f"{factor:g}"}
            if "duration" in copy:  # the copy's own, not the original's
                copy["duration"] = f"{len(perturbed) / TARGET_SAMPLING_RATE:.3f}"
            if "sample_rate" in copy:
                copy["sample_rate"] = str(TARGET_SAMPLING_RATE)
            written.append(copy)
    write_table(written, out, list(written[0]))
    return len(written)
