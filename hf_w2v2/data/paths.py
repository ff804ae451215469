"""Where the files a dataset lists may lie, how listing files are read, and how odd file names are shown.

The one home of the confinement rule. Every reader that turns an entry of a *listing* (a manifest, an
audiofolder's ``metadata.csv``, a JSONL or Parquet shard, a trials file, a path list, a fairseq ``.tsv``,
a LibriSpeech ``*.trans.txt``) into a file path calls :func:`resolve_listed`:

* a **relative** entry resolves against the listing's *root* (its folder, unless the caller names
  another) and must stay inside it: ``../outside/secret.flac`` is refused with an
  :class:`OutsideRootError` naming the listing, the line, the entry and the way out;
* an **absolute** entry is taken as written: it states its location outright, and the package's own
  split, speed-perturbation, study and trials writers (like NeMo's manifests) write absolute paths.
  Entries of one listing outside its root are logged once (with their count), never silently read;
* ``allow_outside_root=True`` (the ``--allow-outside-root`` option, or the environment variable
  ``HF_W2V2_ALLOW_OUTSIDE_ROOT=1`` for the training jobs) accepts relative entries that leave the root.

``hf-w2v2 make-shards``, which copies bytes into files meant to be shared, is stricter:
:func:`check_inside_root` refuses every file outside the source's root, absolute entries included,
unless the option is given.

The check is lexical (``os.path.normpath``, no symbolic link is resolved): links placed inside a
dataset folder are followed as their owner set them up.

Listing files must be UTF-8 (:func:`read_utf8` names the file, line and byte otherwise). File *names*
that are not UTF-8 (Linux keeps them as bytes; Python holds them with surrogate escapes) are opened
through their bytes (:func:`os_path`) and shown with ``\\xNN`` escapes (:func:`display_path`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

ALLOW_OUTSIDE_ROOT_ENV = "HF_W2V2_ALLOW_OUTSIDE_ROOT"
"""Set to ``1`` to let relative entries of listings leave their dataset folder (jobs without the option)."""
MAX_NAMED = 5  # entries named in a log line before "..."


class OutsideRootError(ValueError):
    """A listing names a file outside its dataset folder and the user did not allow it."""


def outside_root_allowed(allow_outside_root: bool | None = None) -> bool:
    """The explicit option when given, else the ``HF_W2V2_ALLOW_OUTSIDE_ROOT`` environment variable."""
    if allow_outside_root is not None:
        return allow_outside_root
    return os.environ.get(ALLOW_OUTSIDE_ROOT_ENV, "").strip().lower() in ("1", "true", "yes")


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` lies in ``root`` or below, compared lexically on absolute normalised paths."""
    full, base = os.path.abspath(path), os.path.abspath(root)
    return full == base or full.startswith(base.rstrip(os.sep) + os.sep)


def resolve_listed(entry: str, root: str | os.PathLike, where: str, allow_outside_root: bool | None = None) -> str:
    """The path of one listing ``entry`` (relative entries against ``root``); see the module docstring.

    Args:
        entry: the path as written in the listing.
        root: the dataset folder relative entries start from and must stay in.
        where: ``listing:line``, named in the error.
        allow_outside_root: accept relative entries leaving ``root`` (None: the environment variable).

    Raises:
        OutsideRootError: a relative entry leaves ``root`` and it was not allowed.
    """
    if os.path.isabs(entry):
        return os.path.normpath(entry)
    full = os.path.normpath(os.path.join(os.fspath(root), entry))
    if not is_inside(full, root) and not outside_root_allowed(allow_outside_root):
        raise OutsideRootError(
            f"{where}: {entry!r} points outside the dataset folder {os.fspath(root)} (to {full}); listed files "
            f"must stay inside it. If you trust this listing, pass --allow-outside-root (allow_outside_root=True, "
            f"or set {ALLOW_OUTSIDE_ROOT_ENV}=1), or move the files into the folder"
        )
    return full


def note_outside(paths: Iterable[str | None], root: str | os.PathLike, source: str) -> list[str]:
    """Log (once per listing) the paths of ``source`` that lie outside ``root``; returns them."""
    outside = [p for p in paths if p is not None and not is_inside(p, root)]
    if outside:
        shown = ", ".join(display_path(p) for p in outside[:MAX_NAMED])
        logger.warning(
            "%d file(s) listed by %s lie outside its folder %s (absolute paths, or allowed): %s%s",
            len(outside),
            display_path(source),
            display_path(root),
            shown,
            ", ..." if len(outside) > MAX_NAMED else "",
        )
    return outside


def check_inside_root(
    paths: Iterable[str | None], root: str | os.PathLike, source: str, allow_outside_root: bool | None = None
) -> None:
    """Refuse files of ``source`` outside ``root`` (absolute ones included) unless allowed (for copies).

    Raises:
        OutsideRootError: naming how many, the first few, and the option.
    """
    outside = [p for p in paths if p is not None and not is_inside(p, root)]
    if outside and not outside_root_allowed(allow_outside_root):
        shown = "\n  ".join(display_path(p) for p in outside[:MAX_NAMED])
        raise OutsideRootError(
            f"{len(outside)} file(s) listed by {display_path(source)} lie outside its folder {display_path(root)} "
            f"and would be copied:\n  {shown}{chr(10) + '  ...' if len(outside) > MAX_NAMED else ''}\n"
            "pass --allow-outside-root if you mean to copy them"
        )


def read_utf8(path: str | os.PathLike, what: str = "file") -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped).

    Raises:
        ValueError: the file is not UTF-8; the message names the file, the line and the byte, and says
            how to convert it.
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{display_path(path)}:{line}: this {what} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT` for a Latin-1 file"
        ) from err


def display_path(path: str | os.PathLike) -> str:
    """``path`` printable and storable as UTF-8: a non-UTF-8 byte of a file name becomes ``\\xNN``."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def os_path(path: str | os.PathLike) -> str | bytes:
    """``path`` as the C libraries can open it: its bytes when its name is not UTF-8, else the string."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text
