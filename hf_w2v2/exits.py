"""How a command ends when it is stopped from outside: Ctrl-C, SIGTERM, its stdout's reader gone.

Shell convention: a command a signal stopped exits with 128 + the signal's number (130 for Ctrl-C, 143 for
SIGTERM, 141 for a broken pipe), with one line on stderr and no traceback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

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
        if int(os.environ.get("RANK", "0") or 0) == 0:
            print(str(stop) or "interrupted", file=sys.stderr)
        sys.exit(int(getattr(stop, "exit_code", EXIT_INTERRUPTED)))
