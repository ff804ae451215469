"""``--quiet``: no progress bars or loading chatter from the libraries a command loads its model through.

transformers draws a "Loading weights" bar for every ``from_pretrained``, and KenLM's C++ code writes
"Loading the LM will be faster if you build a binary file.", "Reading FILE" and a 100-character progress
ruler straight to the process's stderr (file descriptor 2, past Python's ``sys.stderr``). Warnings and
errors still print: :func:`quiet_loading` turns off bars, not logging.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_quiet: ContextVar[bool] = ContextVar("hf_w2v2_quiet", default=False)


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
