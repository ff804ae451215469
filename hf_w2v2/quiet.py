"""``--quiet``: no progress bars or loading chatter from the libraries a command loads its model through.

transformers draws a "Loading weights" bar for every ``from_pretrained``, and KenLM's C++ code writes
"Loading the LM will be faster if you build a binary file.", "Reading FILE" and a 100-character progress
ruler straight to the process's stderr (file descriptor 2, past Python's ``sys.stderr``). Warnings and
errors still print: :func:`quiet_loading` turns off bars, not logging.

:func:`library_notices_quieted` is for the libraries an inference path is built with (issue 33), with or
without ``--quiet``: notices about their own insides, and one side effect on the process's logging.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

_quiet: ContextVar[bool] = ContextVar("hf_w2v2_quiet", default=False)
logger = logging.getLogger(__name__)
# Loggers whose import-time notices a command's user cannot act on: torchao (which transformers' quantizers
# import whenever it is installed) says it cannot load its CUDA kernels on a CPU build, and registers enums
# with torch's pytree in a way torch 2.13 deprecates; four lines on every command's stderr.
IMPORT_NOTICE_LOGGERS = ("torchao", "torch.utils._pytree")


def quiet_import_notices() -> None:
    """For a command's process (the CLI, optimize()'s child process): :data:`IMPORT_NOTICE_LOGGERS` at ERROR
    (errors still show), before anything imports those libraries."""
    for name in IMPORT_NOTICE_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def quiet_loading(enabled: bool = True) -> Iterator[None]:
    """Inside: no transformers / huggingface_hub progress bars, and :func:`native_output_silenced` on."""
    if not enabled:
        yield
        return
    from transformers.utils import logging as hf_logging  # only here: the CLI starts without transformers

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)
        if bars:
            hf_logging.enable_progress_bar()


def bars_wanted() -> bool:
    """False inside :func:`quiet_loading`: long work of our own (e.g. ``optimize()``'s measurement) draws
    no progress bar then."""
    return not _quiet.get()


@contextmanager
def native_output_silenced() -> Iterator[None]:
    """Inside :func:`quiet_loading`, send file descriptor 2 to /dev/null (for a C++ library's progress
    lines, e.g. KenLM's); elsewhere do nothing. Errors still come out as the library's exceptions."""
    if not _quiet.get():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def library_notices_quieted(loggers: Sequence[str] = ()) -> Iterator[None]:
    """Inside: the named ``loggers`` at ERROR, and messages a library logs straight on the root logger
    (``logging.warning(...)``: onnxruntime's quantiser advises pre-processing) sent to this module's
    logger at DEBUG.

    Such a call also runs ``logging.basicConfig()`` when the root logger has no handler, which sets the
    format of every later log line in the process (``WARNING:name:message``) and makes the user's own
    ``basicConfig`` a silent no-op. So while inside, a root logger without handlers gets one that does
    what Python does then (:data:`logging.lastResort`: warnings and errors, the message alone, to stderr),
    and none is left behind. Entries may nest and overlap across threads: what the first changed, the
    last puts back.
    """
    root = logging.getLogger()
    with _notices.lock:
        _notices.depth += 1
        if _notices.depth == 1:
            _notices.stand_in = None if root.handlers else _LastResort()
            if _notices.stand_in is not None:
                root.addHandler(_notices.stand_in)
            root.addFilter(_notices.divert)
        for name in loggers:  # errors still show
            _notices.levels.setdefault(name, logging.getLogger(name).level)
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        with _notices.lock:
            _notices.depth -= 1
            if _notices.depth == 0:
                root.removeFilter(_notices.divert)
                if _notices.stand_in is not None:
                    root.removeHandler(_notices.stand_in)
                for name, level in _notices.levels.items():
                    logging.getLogger(name).setLevel(level)
                _notices.levels.clear()


class _OffTheRoot(logging.Filter):
    """Root-logger filter (it sees only records logged on the root logger itself): to DEBUG here instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger.debug("a library logged on the root logger: %s", record.getMessage())
        return False


class _LastResort(logging.Handler):
    """On a root logger that had no handler: Python's behaviour without one, for records that reach it."""

    def emit(self, record: logging.LogRecord) -> None:
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and not _handled_below_root(record.name):
            last.handle(record)


def _handled_below_root(name: str) -> bool:
    """Whether a logger on the way from ``name`` to the root has a handler (then Python would not use
    :data:`logging.lastResort`)."""
    node: logging.Logger | None = logging.getLogger(name)
    while node is not None and node is not logging.getLogger():
        if node.handlers:
            return True
        node = node.parent if node.propagate else None
    return False


class _Notices:
    """What :func:`library_notices_quieted` changed, shared by its entries (one process-wide logging setup)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0  # entries inside now
        self.levels: dict[str, int] = {}  # each quieted logger's level before the first entry
        self.stand_in: logging.Handler | None = None
        self.divert = _OffTheRoot()


_notices = _Notices()
