"""How a distributed training process ends: its process group closed while the interpreter still runs.

A gloo rank that finished its work could still abort at exit ("terminate called without an active
exception", exit code -6; seen in CI after the model and every output were written). Two facts make
that possible:

- A model wrapped in ``DistributedDataParallel`` keeps the gloo process group alive from C++ until the
  process ends: ``destroy_process_group`` then unregisters the group but cannot join its worker threads
  (``pt_gloo_runloop``; measured with torch 2.13: without DDP they are gone after the destroy, with DDP
  they stay, even once the model is freed).
- A gloo worker thread drops its last reference to a finished collective (and so to the tensors it
  was handed) just after the waiting thread was woken. When those tensors still own Python objects, the
  worker takes the GIL to free them; if the interpreter has begun finalizing by then, CPython ends the
  thread inside a C++ frame that may not unwind, and the process aborts (pytorch/pytorch#190489). A
  rank whose last act is a barrier, then nothing, reaches finalization within microseconds.

So :func:`close_process_group`, registered by the run's start to run at exit, destroys the group and
then waits, the GIL released, until every thread of the communication backend is asleep (bounded by
:data:`SETTLE_LIMIT_S`): a worker still freeing a finished collective's tensors does it now, while the
interpreter is whole.
"""

from __future__ import annotations

import gc
import logging
import os
import time

import torch

logger = logging.getLogger(__name__)

BACKEND_THREAD_PREFIXES = ("pt_gloo", "gloo")  # thread names of torch's gloo backend and of gloo's transport
SETTLE_POLL_S = 0.005  # seconds between looks at the backend's threads (the GIL is free meanwhile)
SETTLE_QUIET_POLLS = 4  # consecutive looks that must find every backend thread asleep
SETTLE_LIMIT_S = 2.0  # the longest a process waits at exit for its backend threads


def close_process_group() -> None:
    """Destroy the default process group, if any, and let its backend threads settle before exit.

    At exit only: a process may run several jobs under one group (tests do).
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    gc.collect()  # what the finished run left in reference cycles goes while every thread can still take the GIL
    torch.distributed.destroy_process_group()
    waited = settle_backend_threads()
    logger.debug("process group closed; backend threads settled after %.3f s", waited)


def settle_backend_threads(limit_s: float = SETTLE_LIMIT_S) -> float:
    """Seconds spent waiting, GIL released, until no backend thread is running; ``limit_s`` at most.

    Looks at ``/proc/self/task`` (Linux); elsewhere sleeps one poll interval, which lets a worker that
    is about to free a collective's tensors do so.
    """
    start = time.monotonic()
    quiet = 0
    while quiet < SETTLE_QUIET_POLLS and time.monotonic() - start < limit_s:
        time.sleep(SETTLE_POLL_S)  # releases the GIL: a worker waiting for it gets it now
        states = backend_thread_states()
        if states is None:
            break
        quiet = quiet + 1 if all(state in "SDI" for state in states) else 0  # asleep, in I/O or idle
    return time.monotonic() - start


def backend_thread_states() -> list[str] | None:
    """The scheduler state letter (``R``, ``S``, ...) of each communication-backend thread; None off Linux."""
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        return None
    states = []
    for tid in os.listdir(tasks):
        try:
            with open(os.path.join(tasks, tid, "stat"), encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:  # the thread ended between the listing and the read
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        if name.startswith(BACKEND_THREAD_PREFIXES):
            states.append(stat[stat.rfind(")") + 2])  # the field after "(name) "
    return states
