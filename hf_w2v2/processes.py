"""Facts about processes: whether one of this host still runs (what a left-over file, a run's lock or a
cache's partial file, says about the process that wrote it), and this one's rank in a distributed launch."""

from __future__ import annotations

import os


def process_runs(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (POSIX: signal 0 checks without sending anything; one
    under another user runs too). Off POSIX, where that check does not exist, True: nothing is judged ended."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def launch_rank() -> int:
    """This process's rank as a launcher (torchrun, accelerate) set it in ``RANK``; 0 without one."""
    return int(os.environ.get("RANK", "0") or 0)
