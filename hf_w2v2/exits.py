"""How a command ends when it is stopped from outside: Ctrl-C, SIGTERM, its stdout's reader gone.

Shell convention: a command a signal stopped exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM, 141 for a broken pipe), with one line on stderr and no traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from hf_w2v2.processes import launch_rank

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: as ``yes | head`` reports for ``yes``


@contextlib.contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """For a script's main: Ctrl-C ends the process with its message on stderr (``interrupted``, or what a
    training run that stopped cleanly says: :class:`hf_w2v2.training.interrupt.TrainingInterrupted`) and the
    exception's ``exit_code`` (130 by default), without a traceback; of a distributed run's processes, the
    main one (``RANK`` 0) alone prints it."""
    try:
        yield
    except KeyboardInterrupt as stop:
        if launch_rank() == 0:
            print(str(stop) or "interrupted", file=sys.stderr)
        sys.exit(int(getattr(stop, "exit_code", EXIT_INTERRUPTED)))


class _Noticing:
    """Process-wide state of :func:`interrupts_noticed` (blocks nest; signal handlers are per process)."""

    depth = 0
    seen = False
    previous: object = None


def _notice(signum: int, frame: object) -> None:
    _Noticing.seen = True
    previous = _Noticing.previous
    if callable(previous):
        previous(signum, frame)  # Python's own raises KeyboardInterrupt
    elif previous != signal.SIG_IGN:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_noticed() -> Iterator[None]:
    """Inside (from the main thread; elsewhere nothing changes), a Ctrl-C does what it did before and is also
    remembered (:func:`interrupt_noticed`), for code that catches a library's errors: a library that runs
    Python callbacks may catch the ``KeyboardInterrupt`` raised in one and raise an error of its own
    (OpenVINO's model converter raises ``OpConversionFailure``), which would otherwise pass for a failure of
    the work itself, and the Ctrl-C would be lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _Noticing.depth == 0:
        _Noticing.seen, _Noticing.previous = False, signal.signal(signal.SIGINT, _notice)
    _Noticing.depth += 1
    try:
        yield
    finally:
        _Noticing.depth -= 1
        if _Noticing.depth == 0:
            signal.signal(signal.SIGINT, _Noticing.previous)  # type: ignore[arg-type]


def interrupt_noticed() -> bool:
    """Whether a Ctrl-C came inside the current :func:`interrupts_noticed` block of the main thread."""
    return _Noticing.depth > 0 and _Noticing.seen
