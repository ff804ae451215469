"""Test-session settings and shared fixtures.

One torch thread: the test models are tiny, and on a shared 2-core machine a second
thread mostly waits (a pre-training test took 70 s with two threads, 2.4 s with one).
optimize() measures in the test's process (``HF_W2V2_MEASURE``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
# optimize() measures in this process, where the tests patch its paths (a child process would not see the
# patches; test_inference_optimize has the test of the child). Subprocesses the tests start inherit it.
os.environ["HF_W2V2_MEASURE"] = "process"


def pick_free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it: bind port 0), for ``accelerate launch
    --main_process_port``. A fixed port fails when another job holds it; ``torchrun`` needs none:
    ``--standalone`` lets it pick its own."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """:func:`pick_free_port` as a fixture."""
    return pick_free_port()


def run_together(
    commands: Sequence[Sequence[str]],
    env: Mapping[str, str] | list[Mapping[str, str]],
    cwd: str | os.PathLike | list[str | os.PathLike],
    timeout: float = 900,
) -> list[subprocess.CompletedProcess]:
    """Run independent commands at once and wait for all (stdout and stderr captured, as ``subprocess.run``).

    The tests' training subprocesses run one thread each (``OMP_NUM_THREADS=1``) while pytest waits:
    started together, two of them use both cores of a 2-core CI machine instead of one after the other.
    ``env`` and ``cwd`` may be one for all or a list, one per command.
    """
    envs = env if isinstance(env, list) else [env] * len(commands)
    folders = cwd if isinstance(cwd, list) else [cwd] * len(commands)
    started = [
        subprocess.Popen(list(command), cwd=c, env=dict(e), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command, e, c in zip(commands, envs, folders)
    ]
    done = []
    for command, process in zip(commands, started):
        out, err = process.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(list(command), process.returncode, out, err))
    return done


TEARDOWN_ABORT = "terminate called without an active exception"
"""What a gloo rank printed when it aborted at exit after its work was done (training/process_exit.py)."""


def run_ranks(
    launch: Callable[[], subprocess.CompletedProcess[str]], clear: Sequence[Path] = ()
) -> subprocess.CompletedProcess[str]:
    """A multi-process launch's result; launched once more, with a warning, if a rank aborted at exit.

    The abort at a gloo rank's exit (``TEARDOWN_ABORT``, exit -6) came after the run's work was done, in
    about one CI run in three before ``training/process_exit.py`` let the backend's threads settle before
    the interpreter finalizes. Should it come back, the warning says so in the test report and the test
    still checks a whole run; a second abort fails it. ``clear``: outputs of the first launch removed first.
    """
    done = launch()
    if done.returncode != 0 and TEARDOWN_ABORT in f"{done.stdout}{done.stderr}":
        warnings.warn(f"a rank aborted at exit ({TEARDOWN_ABORT!r}); launching once more", stacklevel=2)
        for path in clear:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        done = launch()
    return done
