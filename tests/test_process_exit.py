"""A distributed process's exit: the group destroyed and the backend's threads settled while Python runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hf_w2v2.training.process_exit import backend_thread_states, close_process_group, settle_backend_threads

linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc/self/task")


@contextlib.contextmanager
def backend_like_thread(name: str, busy_s: float) -> Iterator[None]:
    """A thread named as a backend thread: multiplying matrices (GIL released, as a worker freeing a finished
    collective's tensors) for ``busy_s`` seconds, then asleep (as an idle worker) until the block ends."""
    named, stop = threading.Event(), threading.Event()

    def work() -> None:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w", encoding="utf-8") as handle:
            handle.write(name)  # the OS name /proc shows
        named.set()
        a = torch.randn(256, 256)
        end = time.monotonic() + busy_s
        while time.monotonic() < end and not stop.is_set():
            a @ a
        stop.wait()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    named.wait()
    try:
        yield
    finally:
        stop.set()
        worker.join()


@linux_only
def test_settling_waits_for_a_busy_backend_thread_and_not_for_a_sleeping_one() -> None:
    torch.set_num_threads(1)
    with backend_like_thread("pt_gloo_runloop", busy_s=0.4):
        assert backend_thread_states()  # the named thread (and any it started) is seen as a backend thread
        waited = settle_backend_threads(limit_s=5.0)
        assert 0.2 < waited < 5.0, waited  # waited out the busy stretch, not the limit
        assert set(backend_thread_states() or []) == {"S"}
        assert settle_backend_threads(limit_s=5.0) < 0.5  # idle workers: a few polls


@linux_only
def test_settling_gives_up_at_its_limit() -> None:
    with backend_like_thread("gloo_tcp_loop", busy_s=60.0):
        assert settle_backend_threads(limit_s=0.3) == pytest.approx(0.3, abs=0.25)


def test_closing_without_a_process_group_does_nothing() -> None:
    assert not torch.distributed.is_initialized()
    close_process_group()  # no group: nothing to destroy, nothing raised
    assert not torch.distributed.is_initialized()


@linux_only
def test_closing_a_gloo_group_with_a_ddp_model_leaves_its_threads_asleep(tmp_path: Path, free_port: int) -> None:
    """One process, world size 1: DDP keeps the group's threads alive past the destroy; they are asleep after."""
    script = tmp_path / "one_rank.py"
    script.write_text(
        "import os, torch\n"
        "from hf_w2v2.training.process_exit import backend_thread_states, close_process_group\n"
        "torch.distributed.init_process_group('gloo', rank=0, world_size=1)\n"
        "model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 8))\n"
        "model(torch.ones(2, 8)).sum().backward()\n"
        "torch.distributed.all_reduce(torch.ones(1000))\n"
        "close_process_group()\n"
        "assert not torch.distributed.is_initialized()\n"
        "print('states', ''.join(backend_thread_states() or []))\n"
    )
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    states = done.stdout.split("states", 1)[1].strip()
    assert set(states) <= set("SDI"), states  # every backend thread left (if any) is asleep
