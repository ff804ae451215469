"""The shards of a streamed corpus: what a source path is made of, and how each kind of shard is read.

A *shard* is the unit that ranks and DataLoader workers split between them (each reads whole shards):

* ``tar``: a WebDataset-style tar file (:mod:`hf_w2v2.data.shards`);
* ``jsonl``: a JSONL manifest, one object per line with an audio column (a path, relative to the
  file's folder, or ``{"path": ..., "bytes": BASE64}``) and a text column; a relative path leaving
  the file's folder is a skipped, counted item (:func:`hf_w2v2.data.paths.resolve_listed`);
* ``parquet``: a Parquet file, its audio column a path string, raw bytes, or the Hugging Face
  ``Audio`` layout ``struct<bytes: binary, path: string>`` (as exported to the Hub);
* ``rows``: a slice of the rows of any other source :mod:`hf_w2v2.data.sources` reads (audiofolder
  ``metadata.csv``, LibriSpeech, CSV/TSV manifests, ``save_to_disk`` folders; for pre-training any
  folder or list of audio files), split into :data:`ROW_SHARDS` slices.

Every reader yields items ``{"name", "audio_bytes", "path", "text"}`` (audio in ``audio_bytes`` or
at ``path``). A shard that fails part-way (unreadable file, corrupt Parquet) is logged with the
number of items read from it, counted in a :class:`~hf_w2v2.data.shards.ShardStats`, and left.
"""

from __future__ import annotations

import base64
import functools
import glob
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hf_w2v2.data.paths import resolve_listed
from hf_w2v2.data.shards import ShardStats, read_tar_shard, read_tar_texts
from hf_w2v2.data.sources import (
    AUDIO_COLUMN_CANDIDATES,
    METADATA_FILES,
    pick_column,
    read_audio_paths,
    read_source,
)

logger = logging.getLogger(__name__)

ROW_SHARDS = 64  # slices of a row-listed source: enough for 8 ranks x 8 workers
PARQUET_BATCH = 64  # rows read from a Parquet file at a time
Shard = dict[str, Any]  # {"kind": ..., "path": ...} (+ source and bounds for row slices); plain data, picklable


def _files(pattern_or_dir: str, suffixes: tuple[str, ...]) -> list[str]:
    found = [str(p) for p in sorted(Path(pattern_or_dir).rglob("*")) if p.suffix.lower() in suffixes]
    return [p for p in found if Path(p).is_file()]


def _file_shard(path: str) -> Shard | None:
    suffix = Path(path).suffix.lower()
    kind = {".tar": "tar", ".jsonl": "jsonl", ".parquet": "parquet"}.get(suffix)
    return None if kind is None else {"kind": kind, "path": path}


Row = tuple[str, str | None, str | None, bytes | None]  # name, text, audio path, audio bytes


@functools.lru_cache(maxsize=8)
def source_rows(source: str, labelled: bool, text_column: str, audio_column: str | None) -> list[Row]:
    """The rows of a row-listed source, read once per process (forked DataLoader workers inherit them).

    Shards name their rows by source and bounds, not by value: datasets hashes ``gen_kwargs``, which
    took 16 s for 300 000 rows held in them.
    """
    if not labelled:
        return [(p, None, p, None) for p in read_audio_paths(source)]
    utterances = read_source(source, text_column=text_column, audio_column=audio_column)
    if isinstance(utterances, dict):
        raise ValueError(f"{source} holds several splits {sorted(utterances)}; point at one split")
    return [(u.name, u.text, u.path, u.audio_bytes) for u in utterances]


def _row_shards(source: str, labelled: bool, text_column: str, audio_column: str | None) -> list[Shard]:
    """The rows of ``source`` in :data:`ROW_SHARDS` contiguous slices ``{"kind": "rows", "start", "stop", ...}``."""
    rows = source_rows(source, labelled, text_column, audio_column)
    if not rows:
        raise ValueError(f"{source} holds no utterances")
    count = min(ROW_SHARDS, len(rows))
    bounds = [len(rows) * i // count for i in range(count + 1)]
    where = {"source": source, "labelled": labelled, "text_column": text_column, "audio_column": audio_column}
    return [
        {"kind": "rows", "path": f"{source}[{a}:{b}]", "start": a, "stop": b, **where}
        for a, b in zip(bounds, bounds[1:])
    ]


def _rows_of(shard: Shard) -> list[Row]:
    rows = source_rows(shard["source"], shard["labelled"], shard["text_column"], shard["audio_column"])
    return rows[shard["start"] : shard["stop"]]


def find_shards(
    source: str, labelled: bool = True, text_column: str = "text", audio_column: str | None = None
) -> list[Shard]:
    """The shards of one source path (a file, a folder, or a glob such as ``data/train-*.tar``).

    A folder is read as tar shards if it holds ``*.tar`` files (searched recursively), else Parquet
    files, else an audiofolder (``metadata.csv``), else JSONL manifests; anything else goes through
    :func:`~hf_w2v2.data.sources.read_source` (``labelled``) or
    :func:`~hf_w2v2.data.sources.read_audio_paths` (unlabeled) and is cut into row slices.

    Raises:
        ValueError: the source does not exist or holds nothing to read.
    """
    if any(ch in source for ch in "*?["):
        matches = sorted(glob.glob(source, recursive=True))
        shards = [s for s in map(_file_shard, matches) if s is not None]
        if not shards:
            raise ValueError(f"no .tar/.jsonl/.parquet file matches {source!r}")
        return shards
    path = Path(source)
    if path.is_file():
        shard = _file_shard(source)
        if shard is not None:
            return [shard]
    elif path.is_dir():
        for suffixes in ((".tar",), (".parquet",)):
            files = _files(source, suffixes)
            if files:
                return [{"kind": _file_shard(f)["kind"], "path": f} for f in files]  # type: ignore[index]
        if not any((path / name).is_file() for name in METADATA_FILES):
            files = _files(source, (".jsonl",))
            if files:
                return [{"kind": "jsonl", "path": f} for f in files]
    else:
        raise ValueError(f"stream source not found: {source}")
    return _row_shards(source, labelled, text_column, audio_column)


def find_all_shards(
    sources: list[str], labelled: bool = True, text_column: str = "text", audio_column: str | None = None
) -> list[Shard]:
    """The shards of every source, in order."""
    return [shard for source in sources for shard in find_shards(source, labelled, text_column, audio_column)]


def _audio_cell(cell: Any, folder: str, where: str) -> tuple[bytes | None, str | None]:
    """(bytes, path) of an audio cell: a path string, raw bytes, or ``{"bytes", "path"}``."""
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell), None
    if isinstance(cell, str) and cell:
        return None, resolve_listed(cell, folder, where)  # stays inside the shard's folder
    if isinstance(cell, dict):
        data, path = cell.get("bytes"), cell.get("path")
        if isinstance(data, str):
            data = base64.b64decode(data)  # JSON holds bytes as base64
        if data:
            return bytes(data), path or None
        if path:
            return _audio_cell(path, folder, where)
    raise ValueError(f"{where}: audio cell has neither bytes nor a path: {str(cell)[:80]!r}")


def _pick(columns: list[str], wanted: str | None, where: str) -> str:
    return pick_column(columns, wanted, AUDIO_COLUMN_CANDIDATES, "audio", where)


def _item(name: str, audio: tuple[bytes | None, str | None], text: Any) -> dict:
    return {"name": name, "audio_bytes": audio[0], "path": audio[1], "text": None if text is None else str(text)}


def read_jsonl_shard(path: str, text_column: str, audio_column: str | None, stats: ShardStats) -> Iterator[dict]:
    folder = os.path.dirname(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                column = _pick(list(row), audio_column, where)
                audio = _audio_cell(row[column], folder, where)
            except ValueError as err:  # json.JSONDecodeError, binascii.Error are ValueErrors
                stats.incomplete.append((where, str(err)))
                logger.warning("skipping %s: %s", where, err)
                continue
            stats.items += 1
            yield _item(str(row.get("id") or where), audio, row.get(text_column))


def read_parquet_shard(path: str, text_column: str, audio_column: str | None, stats: ShardStats) -> Iterator[dict]:
    import pyarrow.parquet as pq

    folder = os.path.dirname(path)
    parquet = pq.ParquetFile(path)
    columns = parquet.schema_arrow.names
    audio = _pick(columns, audio_column, path)
    wanted = [audio] + ([text_column] if text_column in columns else [])
    row = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=wanted):
        table = batch.to_pydict()
        texts = table.get(text_column, [None] * batch.num_rows)
        for cell, text in zip(table[audio], texts):
            where = f"{path}:row{row}"
            row += 1
            try:
                item = _item(where, _audio_cell(cell, folder, where), text)
            except ValueError as err:
                stats.incomplete.append((where, str(err)))
                continue
            stats.items += 1
            yield item


def read_shard(
    shard: Shard, stats: ShardStats, text_column: str = "text", audio_column: str | None = None
) -> Iterator[dict]:
    """Items ``{"name", "audio_bytes", "path", "text"}`` of one shard; a shard failing part-way is logged and left."""
    kind, path = shard["kind"], shard["path"]
    if kind == "tar":
        for item in read_tar_shard(path, stats):
            yield {**item, "path": None}
        return
    if kind == "rows":
        stats.shards += 1
        for name, text, audio_path, data in _rows_of(shard):
            stats.items += 1
            yield {"name": name, "audio_bytes": data, "path": audio_path, "text": text}
        return
    reader = read_jsonl_shard if kind == "jsonl" else read_parquet_shard
    before = stats.items
    try:
        yield from reader(path, text_column, audio_column, stats)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # pyarrow's errors are OSError / ValueError
        stats.bad_shards.append((path, stats.items - before, str(err)))
        logger.warning("skipping the rest of %s: unreadable after %d item(s) (%s)", path, stats.items - before, err)
    finally:
        stats.shards += 1


def shard_texts(shards: list[Shard], text_column: str = "text", audio_column: str | None = None) -> list[str]:
    """Every transcript of ``shards`` (for the vocabulary), without reading audio."""
    texts: list[str] = []
    for shard in shards:
        if shard["kind"] == "tar":
            texts.extend(read_tar_texts(shard["path"]))
        elif shard["kind"] == "rows":
            texts.extend(text or "" for _, text, _, _ in _rows_of(shard))
        elif shard["kind"] == "parquet":
            import pyarrow.parquet as pq

            try:
                texts.extend(
                    str(t or "") for t in pq.read_table(shard["path"], columns=[text_column])[text_column].to_pylist()
                )
            except (OSError, ValueError, KeyError) as err:
                logger.warning("transcripts of %s: unreadable (%s)", shard["path"], err)
        else:
            stats = ShardStats()
            texts.extend(item["text"] or "" for item in read_shard(shard, stats, text_column, audio_column))
    return texts
