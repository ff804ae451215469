"""Test-session settings and shared fixtures.

One torch thread: the test models are tiny, and on a shared 2-core machine a second
thread mostly waits (a pre-training test took 70 s with two threads, 2.4 s with one).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence

import pytest
import torch

torch.set_num_threads(1)


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
