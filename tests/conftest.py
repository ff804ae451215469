"""Test-session settings and shared fixtures.

One torch thread: the test models are tiny, and on a shared 2-core machine a second
thread mostly waits (a pre-training test took 70 s with two threads, 2.4 s with one).
"""

from __future__ import annotations

import socket

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it: bind port 0), for ``accelerate launch
    --main_process_port``. A fixed port fails when another job holds it; ``torchrun`` needs none:
    ``--standalone`` lets it pick its own."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
