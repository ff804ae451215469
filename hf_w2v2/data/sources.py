"""Read speech corpora in the layouts users bring into one list of :class:`Utterance`.

Supported sources (:func:`read_source` picks one from the path):

* **audiofolder**: a folder with ``metadata.csv`` (or ``metadata.jsonl``) whose ``file_name``
  column holds audio paths relative to that folder (the Hugging Face convention);
* **LibriSpeech**: ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` files with lines
  ``<utterance-id> <TRANSCRIPT>`` next to ``<utterance-id>.flac``;
* **manifests**: ``.csv`` / ``.tsv`` / ``.jsonl`` files with an audio path column (``audio``,
  ``path``, ``file_name``, ``audio_filepath`` (NeMo) or ``wav``) and a text column; relative
  paths are relative to the manifest's folder;
* **Hugging Face datasets**: a ``datasets.Dataset`` / ``DatasetDict`` (or a folder written by
  ``save_to_disk``) with an ``Audio`` column (read as encoded bytes or paths, never through
  torchcodec) or a column of path strings.

Only file *paths* are checked here (a missing file fails at once, with the list); decoding
and filtering happen in :mod:`hf_w2v2.data.prepare`. Listed paths stay inside the dataset's folder
(:mod:`hf_w2v2.data.paths` holds the rule and its ``allow_outside_root`` option); listing files must
be UTF-8. A file listed twice is kept once (a warning counts the repeats); listed twice with two
different transcripts (or labels) it is an error naming both lines.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hf_w2v2.data.audio import AUDIO_EXTENSIONS, find_audio_files
from hf_w2v2.data.paths import display_path, note_outside, read_utf8, resolve_listed

if TYPE_CHECKING:
    import datasets

AUDIO_COLUMN_CANDIDATES = ("audio", "path", "file_name", "audio_filepath", "wav", "file")
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.tsv")
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")
MAX_LISTED = 20  # missing files named in an error message before "... and N more"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One recording and its transcript; audio comes from ``audio_bytes`` if set, else ``path``."""

    id: str
    text: str | None  # None for unlabeled audio
    path: str | None = None  # audio file (also the name used in log lines when bytes are given)
    audio_bytes: bytes | None = None  # an encoded file held in memory (datasets Audio cell)

    @property
    def name(self) -> str:
        """What log lines and reports call this utterance: its path (printable), else its id."""
        return display_path(self.path) if self.path else self.id


class MissingAudioFilesError(ValueError):
    """A source refers to audio files that do not exist; ``missing`` lists them all."""

    def __init__(self, source: str, missing: list[str]) -> None:
        self.missing = missing
        listed = "\n  ".join(missing[:MAX_LISTED])
        more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        super().__init__(f"{len(missing)} audio file(s) referenced by {source} do not exist:\n  {listed}{more}")


def check_files_exist(utterances: list[Utterance], source: str) -> None:
    """Raise :class:`MissingAudioFilesError` naming every missing ``path`` of ``utterances``."""
    missing = [u.path for u in utterances if u.audio_bytes is None and u.path and not os.path.isfile(u.path)]
    if missing:
        raise MissingAudioFilesError(source, missing)


def _read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` / ``.tsv`` / ``.jsonl`` file as dicts; a malformed row fails naming its line."""
    suffix = path.suffix.lower()
    if suffix == ".tsv" and _is_fairseq_manifest(path):
        return _read_fairseq_manifest(path)
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, "\t" if suffix == ".tsv" else ",")
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    raise ValueError(f"unsupported manifest type {path.suffix!r} for {path}; use .csv, .tsv or .jsonl")


def _read_delimited(path: Path, delimiter: str) -> list[dict[str, Any]]:
    """CSV/TSV rows with proper quoting; a row with more fields than the header is an error, not dropped text.

    ``a.flac,HELLO, WORLD`` has three fields under a two-column header: ``csv`` would file the
    extra ones under the key ``None`` and the transcript would silently become ``HELLO``.
    """
    rows = []
    with io.StringIO(read_utf8(path, "manifest"), newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter, restkey=_EXTRA_FIELDS)
        for row in reader:
            if _EXTRA_FIELDS in row:
                columns = reader.fieldnames or []
                raise ValueError(
                    f"{path}:{reader.line_num}: {len(columns) + len(row[_EXTRA_FIELDS])} fields but the header has "
                    f"{len(columns)} ({columns}); quote values that contain the delimiter {delimiter!r} "
                    '(e.g. "HELLO, WORLD")'
                )
            # a short row's missing fields are None: read them as empty
            rows.append(
                {**{key: ("" if value is None else value) for key, value in row.items()}, _LINE_KEY: reader.line_num}
            )
    return rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSONL rows; each non-empty line must be a JSON object (its line number is named otherwise)."""
    rows = []
    for number, line in enumerate(read_utf8(path, "manifest").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not a JSON object per line: {err}") from err
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append({**row, _LINE_KEY: number})
    return rows


_EXTRA_FIELDS = "\x00extra"  # restkey: values beyond the header's columns
_LINE_KEY = "\x00line"  # line number of a JSONL row (JSONL rows may have different keys)


def _line_of(row: dict[str, Any], index: int, path: Path) -> str:
    """``path:line`` of a row (CSV/JSONL rows carry their line; fairseq manifest rows are counted)."""
    return f"{path}:{row.get(_LINE_KEY, index + 2)}"


def _is_fairseq_manifest(path: Path) -> bool:
    """A fairseq ``.tsv``: first line the audio root folder (no tab), then ``relative/path<TAB>num_samples``."""
    first = read_utf8(path, "manifest").split("\n", 1)[0].rstrip("\r")
    return bool(first) and "\t" not in first and os.path.isdir(first.strip())


def _fairseq_root(path: Path) -> str:
    """The audio root folder a fairseq manifest names on its first line."""
    return read_utf8(path, "manifest").split("\n", 1)[0].strip()


def _read_fairseq_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows ``{"path": relative path}`` of a fairseq manifest (relative to :func:`_fairseq_root`)."""
    lines = read_utf8(path, "manifest").split("\n")
    return [
        {"path": line.split("\t")[0], _LINE_KEY: number}
        for number, line in enumerate(lines[1:], start=2)
        if line.strip()
    ]


def pick_column(
    columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, source: str | os.PathLike
) -> str:
    """``wanted`` if ``columns`` has it, else the first of ``candidates`` present; the one column picker of
    manifests, shards and streams (an error names ``source`` and its columns)."""
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{source} has no {what} column {wanted!r}; columns are {columns}")
        return wanted
    for candidate in candidates:
        if candidate in columns:
            return candidate
    raise ValueError(f"{source} has no {what} column (looked for {list(candidates)}); columns are {columns}")


def read_manifest(
    path: str | os.PathLike,
    audio_column: str | None = None,
    text_column: str | None = "text",
    root: str | os.PathLike | None = None,
    allow_outside_root: bool | None = None,
) -> list[Utterance]:
    """Read a CSV/TSV/JSONL manifest; fail fast if any audio file is missing.

    Args:
        path: the manifest file (UTF-8).
        audio_column: column of audio paths; default: the first of
            ``audio, path, file_name, audio_filepath, wav, file`` present.
        text_column: transcript column, or ``None`` for unlabeled audio.
        root: folder that relative audio paths start from and stay in (default: the manifest's
            folder; a fairseq ``.tsv``: the folder on its first line).
        allow_outside_root: let relative paths leave ``root`` (default: the ``HF_W2V2_ALLOW_OUTSIDE_ROOT``
            environment variable; see :mod:`hf_w2v2.data.paths`).

    Raises:
        ValueError: not UTF-8, a malformed row, a path leaving ``root`` (``OutsideRootError``), one file
            listed with two transcripts, or missing audio files (``MissingAudioFilesError``, all named).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest not found: {path}")
    rows = _read_table(path)
    if not rows:
        raise ValueError(f"manifest {path} has no rows")
    columns = [key for key in rows[0] if key != _LINE_KEY]
    audio_column = pick_column(columns, audio_column, AUDIO_COLUMN_CANDIDATES, "audio", path)
    if text_column is not None:
        pick_column(columns, text_column, (), "text", path)
    if root is None and path.suffix.lower() == ".tsv" and _is_fairseq_manifest(path):
        root = _fairseq_root(path)
    base = Path(root) if root is not None else path.parent
    utterances, lines = [], []
    for index, row in enumerate(rows):
        if not isinstance(row.get(audio_column), str) or not row[audio_column]:
            found = "no" if audio_column not in row else f"an empty or non-string ({row[audio_column]!r})"
            raise ValueError(
                f"{_line_of(row, index, path)}: {found} {audio_column!r} key; every row needs the audio path "
                f"there (keys of this row: {[k for k in row if k != _LINE_KEY]})"
            )
        audio = row[audio_column]
        full = resolve_listed(audio, base, _line_of(row, index, path), allow_outside_root)
        if text_column is not None and text_column not in row:
            raise ValueError(f"{_line_of(row, index, path)}: no {text_column!r} key (the transcript) in this row")
        text = None if text_column is None else str(row[text_column] or "")
        utterances.append(Utterance(id=str(row.get("id") or Path(audio).stem), text=text, path=full))
        lines.append(_line_of(row, index, path))
    note_outside([u.path for u in utterances], base, str(path))
    utterances = drop_repeats(utterances, lines, text_column or "text", str(path))
    check_files_exist(utterances, str(path))
    return utterances


def drop_repeats(utterances: list[Utterance], lines: list[str], text_column: str, source: str) -> list[Utterance]:
    """``utterances`` with each audio file once (the first listing kept); repeats are logged with their count.

    Raises:
        ValueError: a file listed twice with different transcripts (or labels): which one is right
            cannot be told; both lines are named.
    """
    first: dict[str, int] = {}
    kept, repeats = [], []
    repeated: set[str] = set()
    for index, utt in enumerate(utterances):
        if utt.path is None:
            kept.append(utt)
            continue
        seen = first.setdefault(utt.path, index)
        if seen == index:
            kept.append(utt)
            continue
        if utt.text != utterances[seen].text:
            raise ValueError(
                f"{display_path(utt.path)} is listed twice with different {text_column!r} values: "
                f"{utterances[seen].text!r} ({lines[seen]}) and {utt.text!r} ({lines[index]}); keep one row"
            )
        repeats.append(lines[index])
        repeated.add(utt.path)
    if repeats:
        logger.warning(
            "%s lists %d file(s) more than once: kept the first listing, skipped %d repeated row(s) (%s%s)",
            display_path(source),
            len(repeated),
            len(repeats),
            ", ".join(repeats[:MAX_LISTED]),
            ", ..." if len(repeats) > MAX_LISTED else "",
        )
    return kept


def read_audiofolder(
    root: str | os.PathLike, text_column: str | None = "text", allow_outside_root: bool | None = None
) -> list[Utterance]:
    """Read a Hugging Face audiofolder: ``root/metadata.csv`` (or ``.jsonl``) with ``file_name``."""
    root = Path(root)
    for name in METADATA_FILES:
        if (root / name).is_file():
            return read_manifest(
                root / name, audio_column="file_name", text_column=text_column, allow_outside_root=allow_outside_root
            )
    raise ValueError(f"{root} is not an audiofolder: no metadata.csv / metadata.jsonl / metadata.tsv in it")


def read_librispeech(root: str | os.PathLike, allow_outside_root: bool | None = None) -> list[Utterance]:
    """Read every ``*.trans.txt`` under ``root`` (LibriSpeech layout), sorted by utterance id."""
    root = Path(root)
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise ValueError(f"{root} has no LibriSpeech *.trans.txt files")
    utterances, missing = [], []
    for trans in transcripts:
        for number, line in enumerate(read_utf8(trans, "transcript file").splitlines(), start=1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            listed = os.path.join(os.path.relpath(trans.parent, root), utt_id)
            resolve_listed(listed, root, f"{trans}:{number}", allow_outside_root)  # an id may not climb out
            audio = next(
                (
                    trans.parent / f"{utt_id}{ext}"
                    for ext in AUDIO_EXTENSIONS
                    if (trans.parent / f"{utt_id}{ext}").is_file()
                ),
                None,
            )
            if audio is None:
                missing.append(f"{trans.parent / utt_id}.flac (from {trans.name}:{number})")
                continue
            utterances.append(Utterance(id=utt_id, text=text.strip(), path=str(audio)))
    if missing:
        raise MissingAudioFilesError(str(root), missing)
    return sorted(utterances, key=lambda u: u.id)


def read_hf_dataset(
    dataset: datasets.Dataset, audio_column: str = "audio", text_column: str | None = "text"
) -> list[Utterance]:
    """Read a ``datasets.Dataset`` without decoding audio (no torchcodec).

    ``audio_column`` may be an ``Audio`` feature (its encoded bytes or file path are used)
    or a column of path strings.
    """
    import datasets

    if audio_column not in dataset.column_names:
        raise ValueError(f"dataset has no audio column {audio_column!r}; columns are {dataset.column_names}")
    if text_column is not None and text_column not in dataset.column_names:
        raise ValueError(f"dataset has no text column {text_column!r}; columns are {dataset.column_names}")
    if isinstance(dataset.features[audio_column], datasets.Audio):
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    columns = [audio_column] + ([text_column] if text_column is not None else [])
    table = dataset.select_columns(columns).to_dict()
    texts = table[text_column] if text_column is not None else [None] * len(dataset)
    utterances = []
    for index, (cell, text) in enumerate(zip(table[audio_column], texts)):
        if isinstance(cell, dict):
            path, data = cell.get("path"), cell.get("bytes")
        else:
            path, data = cell, None
        if data is None and not path:
            raise ValueError(f"dataset row {index}: audio column {audio_column!r} has neither bytes nor a path")
        utt_id = Path(path).stem if path else f"row{index}"
        text = None if text_column is None else (text or "")
        utterances.append(Utterance(id=utt_id, text=text, path=path or None, audio_bytes=data or None))
    check_files_exist(utterances, "the dataset")
    return utterances


def read_audio_paths(source: str | os.PathLike, allow_outside_root: bool | None = None) -> list[str]:
    """Audio paths of an unlabeled source (pre-training): a folder or a manifest, transcripts not needed.

    A folder with ``metadata.csv``/``.jsonl`` is read as an audiofolder, any other folder is searched
    recursively for audio files; a ``.csv``/``.tsv``/``.jsonl`` manifest (fairseq's ``.tsv`` with its
    root line too) gives its audio column; any other file lists one path per line (``#`` comments;
    relative to the file's folder and staying inside it, as in :func:`read_manifest`).
    """
    path = Path(source)
    if path.is_dir():
        if any((path / name).is_file() for name in METADATA_FILES):
            return [u.path for u in read_audiofolder(path, None, allow_outside_root) if u.path]
        return find_audio_files(path)
    if not path.is_file():
        raise ValueError(f"audio source not found: {path}")
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return [u.path for u in read_manifest(path, text_column=None, allow_outside_root=allow_outside_root) if u.path]
    lines = read_utf8(path, "list of audio files").splitlines()
    paths = [
        resolve_listed(line.strip(), path.parent, f"{path}:{number}", allow_outside_root)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.strip().startswith("#")
    ]
    note_outside(paths, path.parent, str(path))
    return paths


def read_source(
    source: str | os.PathLike | datasets.Dataset | datasets.DatasetDict,
    text_column: str | None = "text",
    audio_column: str | None = None,
    allow_outside_root: bool | None = None,
) -> list[Utterance] | dict[str, list[Utterance]]:
    """Read any supported source; a ``DatasetDict`` (or its saved folder) gives one list per split.

    ``allow_outside_root`` lets listed paths leave the source's folder (see :mod:`hf_w2v2.data.paths`).

    Detection: a ``Dataset``/``DatasetDict`` object; a folder written by ``save_to_disk``
    (``state.json`` or ``dataset_dict.json``); a folder with ``metadata.csv``/``.jsonl``
    (audiofolder); a folder with ``*.trans.txt`` (LibriSpeech); a ``.csv``/``.tsv``/``.jsonl`` file.
    """
    if not isinstance(source, (str, os.PathLike)):
        return _read_datasets_object(source, audio_column or "audio", text_column)
    path = Path(source)
    if path.is_file():
        return read_manifest(path, audio_column, text_column, allow_outside_root=allow_outside_root)
    if not path.is_dir():
        raise ValueError(f"data source not found: {path}")
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        import datasets

        return _read_datasets_object(datasets.load_from_disk(str(path)), audio_column or "audio", text_column)
    if any((path / name).is_file() for name in METADATA_FILES):
        return read_audiofolder(path, text_column, allow_outside_root)
    if next(path.rglob("*.trans.txt"), None) is not None:
        return read_librispeech(path, allow_outside_root)
    raise ValueError(
        f"cannot tell what kind of data source {path} is: expected metadata.csv/metadata.jsonl "
        "(audiofolder), *.trans.txt (LibriSpeech) or a datasets save_to_disk folder"
    )


def _read_datasets_object(
    obj: Any, audio_column: str, text_column: str | None
) -> list[Utterance] | dict[str, list[Utterance]]:
    import datasets

    if isinstance(obj, datasets.DatasetDict):
        return {split: read_hf_dataset(ds, audio_column, text_column) for split, ds in obj.items()}
    if isinstance(obj, datasets.Dataset):
        return read_hf_dataset(obj, audio_column, text_column)
    raise ValueError(f"unsupported data source of type {type(obj).__name__}; pass a path or a datasets.Dataset")
