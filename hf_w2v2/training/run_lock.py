"""One run per output folder: a lock file that a second run finds and refuses to start on.

Two jobs writing the same ``--output_dir`` at once both exit 0 with checkpoints, weights, state and
card from whichever wrote last. A job takes :data:`LOCK_FILE` in its output folder before it writes
anything (:func:`acquire_run_lock`): the file is created atomically (``O_CREAT | O_EXCL``) and holds
who took it (pid, host, start time, command line). A second run fails at once naming that holder.

A lock whose holder is gone is taken over with a warning naming it: on the same host, a pid that no
longer runs (or now belongs to a process started later: a reused pid). A lock held by another host
cannot be checked from here, so it is refused with the instruction to delete the file if that run
has ended. Only the main process of a distributed run (``RANK`` 0) takes the lock; the lock is
released at the end of the job, and at interpreter exit if the job ended with an exception.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import json
import logging
import os
import socket
import sys
from dataclasses import asdict, dataclass

from hf_w2v2.processes import launch_rank, process_runs

logger = logging.getLogger(__name__)

LOCK_FILE = ".hf_w2v2_run.lock"
"""Name of the lock file inside the output folder."""
UNREADABLE_GRACE_S = 60.0  # seconds an unreadable lock file (a holder still writing it) is respected


@dataclass(frozen=True)
class LockHolder:
    """Who holds an output folder: what the lock file records."""

    pid: int
    host: str
    started: str  # ISO 8601, UTC
    command: str
    process_start: str | None = None  # Linux: the process's start time in clock ticks since boot (detects reuse)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started} ({self.command})"


class OutputFolderLockedError(OSError):
    """Another run holds the output folder; ``holder`` says who."""

    def __init__(self, output_dir: str, holder: LockHolder | None, lock_path: str) -> None:
        self.holder = holder
        who = holder.describe() if holder is not None else "a run whose lock file is still being written"
        super().__init__(
            f"output folder {output_dir} is in use by another run: {who}. Wait for it to finish, or use another "
            f"--output_dir; if that run has ended without cleaning up, delete {lock_path}"
        )


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), None off Linux."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: LockHolder) -> bool:
    """Whether ``holder`` (a process on this host) still runs."""
    if not process_runs(holder.pid):
        return False
    started = _process_start(holder.pid)
    return holder.process_start is None or started is None or started == holder.process_start


def _read(path: str) -> LockHolder | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return LockHolder(**json.load(handle))
    except (OSError, ValueError, TypeError):
        return None


class RunLock:
    """The lock of one output folder, held by this process until :meth:`release`."""

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_FILE)
        self.held = False

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`OutputFolderLockedError` naming the run that holds it."""
        os.makedirs(self.output_dir, exist_ok=True)
        me = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command=" ".join(sys.argv)[:500],
            process_start=_process_start(os.getpid()),
        )
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing(me)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(me), handle)
            self.held = True
            atexit.register(self.release)
            return self
        raise OutputFolderLockedError(self.output_dir, _read(self.path), self.path)

    def _handle_existing(self, me: LockHolder) -> None:
        """Remove a lock whose holder is gone (with a warning); raise when it is held."""
        holder = _read(self.path)
        if holder is None:
            try:
                age = datetime.datetime.now().timestamp() - os.path.getmtime(self.path)
            except FileNotFoundError:
                return  # released meanwhile
            if age < UNREADABLE_GRACE_S:
                raise OutputFolderLockedError(self.output_dir, None, self.path)
            logger.warning("%s: taking over an unreadable lock file %.0f s old", self.output_dir, age)
        elif holder.host != me.host:
            raise OutputFolderLockedError(self.output_dir, holder, self.path)
        elif holder.pid == me.pid and holder.process_start == me.process_start:
            logger.info("%s: this process's earlier run left its lock; taking it again", self.output_dir)
        elif _alive(holder):
            raise OutputFolderLockedError(self.output_dir, holder, self.path)
        else:
            logger.warning(
                "%s: taking over the lock of a run that no longer runs (%s)", self.output_dir, holder.describe()
            )
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def release(self) -> None:
        """Remove the lock file if this process still holds it (idempotent)."""
        if not self.held:
            return
        self.held = False
        atexit.unregister(self.release)
        holder = _read(self.path)
        if holder is not None and holder.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> RunLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_run_lock(output_dir: str) -> RunLock:
    """Lock ``output_dir`` for this run (main process only; other ranks get an unheld lock).

    Raises:
        OutputFolderLockedError: another live run holds it (its pid, host and start time are named).
    """
    lock = RunLock(output_dir)
    if launch_rank() != 0:
        return lock
    return lock.acquire()
