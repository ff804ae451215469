"""WebDataset-style tar shards of speech: write them, and read them back item by item, skipping bad ones.

A shard is a plain (uncompressed) POSIX tar file. Each utterance is a group of consecutive members
sharing a *key* (the member path up to the first dot of its file name), one member per field:

* ``KEY.flac`` (or any of :data:`hf_w2v2.data.audio.AUDIO_EXTENSIONS`): the encoded audio, as is;
* ``KEY.txt``: the transcript (UTF-8), or ``KEY.json``: an object with a ``text`` key
  (``transcript``/``sentence`` also accepted); neither for unlabeled audio.

This is the layout of the ``webdataset`` package (no dependency on it here): shards made by its
``TarWriter`` with these fields are read too. Shards are read sequentially (``tarfile`` stream mode),
so one pass reads each byte once, from a local disk or a network file system.

A shard that cannot be read to its end (not a tar file, a truncated copy, a member cut off) is
logged with its name and the number of items read from it before the damage, counted in
:class:`ShardStats`, and left: reading goes on with the next shard. Items read before the damage
are kept; the group being read when it happened is dropped (its audio may be cut).
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from hf_w2v2.data.audio import AUDIO_EXTENSIONS
from hf_w2v2.data.paths import display_path
from hf_w2v2.data.sources import Utterance

logger = logging.getLogger(__name__)

SHARD_PATTERN = "shard-{index:06d}.tar"
TEXT_KEYS = ("text", "transcript", "sentence")  # where a KEY.json member holds the transcript
_AUDIO_SUFFIXES = tuple(ext.lstrip(".") for ext in AUDIO_EXTENSIONS)
_MAGIC = ((b"fLaC", "flac"), (b"RIFF", "wav"), (b"OggS", "ogg"), (b"ID3", "mp3"), (b"FORM", "aiff"))
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-/]")  # a key may not hold dots (they start the field suffix)


@dataclass
class ShardStats:
    """What a reader saw: shards and items read, shards it had to leave, groups it could not use."""

    shards: int = 0
    items: int = 0
    bad_shards: list[tuple[str, int, str]] = field(default_factory=list)  # (shard, items read before, reason)
    incomplete: list[tuple[str, str]] = field(default_factory=list)  # (shard:key, reason): no audio, bad json

    def format(self) -> str:
        return (
            f"read {self.items} items from {self.shards} shard(s); {len(self.bad_shards)} corrupt or truncated "
            f"shard(s) skipped, {len(self.incomplete)} incomplete item(s) skipped"
        )


def shard_key(member_name: str) -> tuple[str, str]:
    """``("dir/utt1", "flac")`` for ``dir/utt1.flac``: the key and the (lower-case) field suffix."""
    folder, base = posixpath.split(member_name)
    stem, _, suffix = base.partition(".")
    return posixpath.join(folder, stem), suffix.lower()


def _text_of(fields: dict[str, bytes], where: str) -> str | None:
    """The transcript of a group: ``txt``, else a text key of ``json``; None when there is neither."""
    if "txt" in fields:
        return fields["txt"].decode("utf-8").strip()
    if "json" in fields:
        meta = json.loads(fields["json"].decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"{where}.json is not a JSON object")
        for key in TEXT_KEYS:
            if key in meta:
                return str(meta[key])
    return None


def _audio_field(fields: dict[str, bytes]) -> bytes | None:
    for suffix, data in fields.items():
        if suffix.rsplit(".", 1)[-1] in _AUDIO_SUFFIXES:
            return data
    return None


def _group_item(shard: str, key: str, fields: dict[str, bytes], stats: ShardStats) -> dict | None:
    """One utterance ``{"name", "audio_bytes", "text"}`` from a group of members; None (counted) if unusable."""
    where = f"{shard}:{key}"
    audio = _audio_field(fields)
    if audio is None:
        stats.incomplete.append((where, f"no audio member (fields {sorted(fields)})"))
        return None
    try:
        text = _text_of(fields, where)
    except (UnicodeDecodeError, ValueError) as err:  # json.JSONDecodeError is a ValueError
        stats.incomplete.append((where, f"unreadable transcript: {err}"))
        return None
    return {"name": where, "audio_bytes": audio, "text": text}


def read_tar_shard(path: str, stats: ShardStats | None = None) -> Iterator[dict]:
    """Items ``{"name": "SHARD:KEY", "audio_bytes", "text"}`` of one shard, in order; see the module docstring."""
    stats = stats if stats is not None else ShardStats()
    read = 0
    key: str | None = None
    fields: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, suffix = shard_key(member.name)
                if member_key != key and key is not None:  # the previous group is whole: hand it out first
                    item = _group_item(path, key, fields, stats)
                    fields = {}
                    if item is not None:
                        read += 1
                        yield item
                key = member_key
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                if len(data) != member.size:
                    raise tarfile.ReadError(f"member {member.name} cut off ({len(data)} of {member.size} bytes)")
                fields[suffix] = data
        if key is not None and fields:
            item = _group_item(path, key, fields, stats)
            if item is not None:
                read += 1
                yield item
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        stats.bad_shards.append((path, read, str(err) or type(err).__name__))
        logger.warning(
            "skipping the rest of shard %s: corrupt or truncated after %d item(s) (%s)",
            path,
            read,
            err or type(err).__name__,
        )
    finally:
        stats.shards += 1
        stats.items += read


def read_tar_shards(paths: Iterable[str], stats: ShardStats | None = None) -> Iterator[dict]:
    """Items of every shard of ``paths`` in turn; a bad shard is logged, counted in ``stats`` and left."""
    stats = stats if stats is not None else ShardStats()
    for path in paths:
        yield from read_tar_shard(path, stats)


def read_tar_texts(path: str) -> Iterator[str]:
    """Transcripts of one shard, reading only the text members (audio members are seeked over)."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                key, suffix = shard_key(member.name)
                if member.isfile() and suffix in ("txt", "json"):
                    handle = tar.extractfile(member)
                    text = _text_of({suffix: handle.read() if handle else b""}, f"{path}:{key}")
                    if text is not None:
                        yield text
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError, ValueError) as err:
        logger.warning("transcripts of shard %s: stopped at a corrupt or truncated part (%s)", path, err)


def audio_suffix(data: bytes, path: str | None) -> str:
    """The field suffix of encoded audio: the file's extension, else guessed from its first bytes."""
    if path is not None:
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext in _AUDIO_SUFFIXES:
            return ext
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    raise ValueError(f"cannot tell the audio format of {path or 'in-memory audio'}; give a path with an extension")


def _unique_key(utt: Utterance, index: int, used: set[str]) -> str:
    key = _KEY_UNSAFE.sub("_", Path(utt.id).name if utt.id else f"utt{index}") or f"utt{index}"
    if key in used:
        key = f"{key}_{index}"
    used.add(key)
    return key


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # fixed metadata: the same input gives the same bytes
    tar.addfile(info, io.BytesIO(data))


def check_output_folder(out_dir: str | os.PathLike, overwrite: bool) -> list[str]:
    """The old shards ``out_dir`` holds (to replace), after refusing a folder shards must not go into.

    A stream reads every ``*.tar`` of a folder, so new shards next to old ones would mix two corpora.

    Raises:
        ValueError: ``out_dir`` is a file; it holds files without ``overwrite``; with ``overwrite``,
            it holds files other than shards (those are never deleted).
    """
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output folder {folder} is a file, not a folder; give a folder path for the shards")
    if not folder.is_dir():
        return []
    entries = sorted(folder.iterdir())
    if not entries:
        return []
    if not overwrite:
        raise ValueError(
            f"output folder {folder} is not empty ({len(entries)} entries, e.g. {entries[0].name}); a stream reads "
            "every .tar in it, so old and new shards would mix: pass --overwrite (overwrite=True) to replace its "
            "shards, or choose an empty folder"
        )
    shard = re.compile(r"shard-\d{6}\.tar(\.tmp)?")
    others = [e.name for e in entries if not (e.is_file() and shard.fullmatch(e.name))]
    if others:
        raise ValueError(
            f"output folder {folder} holds files that are not shards ({others[:5]}); --overwrite replaces only "
            "shard-NNNNNN.tar files: move those away or choose an empty folder"
        )
    return [str(e) for e in entries]


def write_shards(
    utterances: Sequence[Utterance],
    out_dir: str | os.PathLike,
    utterances_per_shard: int,
    show_progress: bool = True,
    overwrite: bool = False,
) -> list[str]:
    """Write ``utterances`` as tar shards of ``utterances_per_shard`` items each into ``out_dir``.

    Audio is copied as encoded (no re-encoding): from ``audio_bytes`` when set, else from the file at
    ``path``. Transcripts go to ``KEY.txt`` (none for unlabeled audio). Keys are the utterance ids made
    unique. Shards are written under temporary names and renamed once all are written, so a shard that
    exists is whole and a failed run leaves the folder as it was. ``out_dir`` must be empty or new;
    with ``overwrite`` its old shards are replaced (those beyond the new count deleted), never mixed in.

    Returns:
        The shard paths, in order (``out_dir/shard-000000.tar``, ...).

    Raises:
        ValueError: ``utterances_per_shard < 1``, no utterances, an audio file that cannot be read, or an
            output folder :func:`check_output_folder` refuses.
    """
    if utterances_per_shard < 1:
        raise ValueError(f"utterances_per_shard must be >= 1, got {utterances_per_shard}")
    if not utterances:
        raise ValueError("no utterances to write")
    old = check_output_folder(out_dir, overwrite)
    os.makedirs(out_dir, exist_ok=True)
    paths: list[str] = []
    # Not files.written_whole: its partial names keep the extension (shard-000000.part-...tar), and a stream
    # reads every *.tar of the folder, a killed run's leftover too; PATH.tmp is never read.
    try:
        _write_temporary_shards(utterances, os.fspath(out_dir), utterances_per_shard, show_progress, paths)
    except BaseException:
        for path in paths:
            if os.path.exists(path + ".tmp"):
                os.remove(path + ".tmp")
        raise
    for path in paths:
        os.replace(path + ".tmp", path)
    for stale in sorted(set(old) - set(paths)):
        if os.path.exists(stale):  # an old PATH.tmp was written over and renamed
            os.remove(stale)
    return paths


def _write_temporary_shards(
    utterances: Sequence[Utterance], out_dir: str, utterances_per_shard: int, show_progress: bool, paths: list[str]
) -> None:
    """Write each shard as ``PATH.tmp``, appending ``PATH`` to ``paths`` before writing it."""
    used: set[str] = set()
    progress = tqdm(total=len(utterances), desc="writing shards", unit="utt", disable=not show_progress)
    for start in range(0, len(utterances), utterances_per_shard):
        path = os.path.join(out_dir, SHARD_PATTERN.format(index=len(paths)))
        paths.append(path)
        with tarfile.open(path + ".tmp", mode="w", format=tarfile.PAX_FORMAT) as tar:
            for index, utt in enumerate(utterances[start : start + utterances_per_shard], start=start):
                data = utt.audio_bytes
                if data is None:
                    if utt.path is None:
                        raise ValueError(f"utterance {utt.id} has neither audio bytes nor a path")
                    try:
                        data = Path(utt.path).read_bytes()
                    except OSError as err:
                        raise ValueError(f"cannot read audio file {display_path(utt.path)}: {err}") from err
                key = _unique_key(utt, index, used)
                _add_member(tar, f"{key}.{audio_suffix(data, utt.path)}", data)
                if utt.text is not None:
                    _add_member(tar, f"{key}.txt", utt.text.encode("utf-8"))
                progress.update(1)
    progress.close()
