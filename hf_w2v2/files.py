"""Files written whole: under a name of their own until complete, then renamed (``os.replace``), so a reader
never meets half a file and two writers of one file at once never write into one; a write that raises
(Ctrl-C, a full disk) removes its partial file, and the partial files of processes killed outright are
found by their names (:func:`remove_stale_partials`). Used for optimize()'s cache files, exported graphs, ARPA
LMs, the CLI's output files (transcripts, subtitles, embeddings) and data shards.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator, Sequence

from hf_w2v2.processes import process_runs

MB = 2**20
SPARE_BYTES = 64 * MB  # what a write leaves free on its disk at least (other programs need some too)


def partial_name(path: str) -> str:
    """The name a file ``path`` is written under until it is complete and renamed to ``path``
    (``os.replace``): this host's, process's and thread's own, so that two builds of one file at once (two
    servers started together) never write into one file; the extension is kept (some writers check it)."""
    stem, extension = os.path.splitext(path)
    return f"{stem}.part-{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}{extension}"


def space_short(folder: str, needs: int) -> str | None:
    """Why ``folder``'s disk cannot take a file of ``needs`` bytes and still keep :data:`SPARE_BYTES` free
    (None: it can)."""
    free = shutil.disk_usage(folder).free
    if free >= needs + SPARE_BYTES:
        return None
    return f"{free / MB:.0f} MB free in {folder}, {needs / MB:.0f} MB needed and {SPARE_BYTES / MB:.0f} MB kept spare"


@contextlib.contextmanager
def written_whole(path: str, companions: Sequence[str] = (), needs: int = 0) -> Iterator[str]:
    """Yields the name to write ``path`` under (:func:`partial_name`); renamed to ``path`` when the
    block ends (a reader never meets half a file), removed where it raises (Ctrl-C, a full disk, a failed
    build: an ONNX graph of BASE is 380 MB). ``companions``: extensions of files the writer puts beside it
    under the same stem (OpenVINO's ``.bin`` beside its ``.xml``), renamed before it and removed with it.

    ``needs``: about how many bytes the file takes; where the disk lacks them (:func:`space_short`), an
    ``OSError`` (``ENOSPC``) before anything is written: a write that fills the disk fails in ways the
    writers do not all survive (torch's package writer aborts the process)."""
    short = space_short(os.path.dirname(path) or ".", needs) if needs else None
    if short is not None:
        raise OSError(errno.ENOSPC, f"not enough space for {os.path.basename(path)}: {short}")
    part = partial_name(path)
    stem, part_stem = os.path.splitext(path)[0], os.path.splitext(part)[0]
    try:
        yield part
        for extension in companions:
            os.replace(part_stem + extension, stem + extension)
        os.replace(part, path)
    except BaseException:
        for leftover in (part, *(part_stem + extension for extension in companions)):
            with contextlib.suppress(OSError):
                os.remove(leftover)
        raise


def write_text(path: str, text: str) -> None:
    """``text`` into ``path`` (UTF-8), written whole (:func:`written_whole`): a transcript, a subtitle file."""
    with written_whole(path) as part, open(part, "w", encoding="utf-8") as out:
        out.write(text)


@contextlib.contextmanager
def lock_exclusively(path: str, waiting: Callable[[], object] | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on the file ``path`` (made if missing) for the block; another holder, in another
    process or another open of it in this one, is waited for (``waiting()`` is called once first). The system
    releases a lock when its holder ends, however it ends: no lock is left behind by a killed process. Yields
    False where no lock can be had (no ``fcntl``: Windows; a folder that cannot be written; a file system
    without locks): the block then runs unlocked."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        fcntl = None  # type: ignore[assignment]
    handle = None
    if fcntl is not None:
        with contextlib.suppress(OSError):
            handle = open(path, "ab")  # noqa: SIM115 (closed below, after the block)
    locked = False
    try:
        if handle is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:  # held: wait for it
                if waiting is not None:
                    waiting()
                fcntl.flock(handle, fcntl.LOCK_EX)
                locked = True
            except OSError:  # ENOLCK and the like: no locks here
                pass
        yield locked
    finally:
        if handle is not None:
            handle.close()  # (closing releases the lock)


def remove_stale_partials(folder: str) -> list[str]:
    """Remove the partial files (:func:`partial_name`) in ``folder`` of this host's processes that have ended
    without removing them (killed mid-build: SIGKILL, out of memory, power cut); returns their names. Files
    of live processes, and of other hosts sharing the folder, are left alone."""
    pattern = re.compile(rf"\.part-{re.escape(socket.gethostname())}-(\d+)-\d+(\.[^.]+)?$")
    removed = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        match = pattern.search(name)
        if match and not process_runs(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed
