"""One run per output folder (issue 35): two fine-tuning runs into one --output_dir both exited 0 with the
last writer's files. The second run now fails at once naming the holder; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from hf_w2v2.training.run_lock import LOCK_FILE, OutputFolderLockedError, RunLock, acquire_run_lock


def _holder(tmp_path, pid: int, host: str | None = None) -> None:
    record = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "started": "2026-01-01T00:00:00+00:00",
        "command": "finetune_ctc.py --output_dir x",
    }
    (tmp_path / LOCK_FILE).write_text(json.dumps(record))


@pytest.fixture
def other_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_fails_at_once_naming_the_holder(tmp_path, other_process):
    _holder(tmp_path, other_process.pid)
    start = time.perf_counter()
    with pytest.raises(OutputFolderLockedError) as error:
        acquire_run_lock(str(tmp_path))
    assert time.perf_counter() - start < 1
    message = str(error.value)
    for part in (f"pid {other_process.pid}", socket.gethostname(), "2026-01-01T00:00:00", str(tmp_path / LOCK_FILE)):
        assert part in message
    assert error.value.holder is not None and error.value.holder.pid == other_process.pid


def test_two_processes_cannot_both_hold_a_folder(tmp_path):
    code = (
        "import sys, time; from hf_w2v2.training.run_lock import acquire_run_lock; "
        "acquire_run_lock(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(OutputFolderLockedError, match=f"pid {proc.pid} on host"):
            acquire_run_lock(str(tmp_path))
    finally:
        proc.kill()
        proc.wait()
    lock = acquire_run_lock(str(tmp_path))  # killed (SIGKILL): its lock is stale now
    lock.release()


def test_the_lock_of_a_dead_run_is_taken_over_with_a_warning(tmp_path, caplog):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    _holder(tmp_path, proc.pid)
    with caplog.at_level(logging.WARNING, logger="hf_w2v2.training.run_lock"):
        lock = acquire_run_lock(str(tmp_path))
    assert f"taking over the lock of a run that no longer runs (pid {proc.pid}" in caplog.text
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_held_on_another_host_is_refused(tmp_path):
    _holder(tmp_path, 1, host="other-node-7")
    with pytest.raises(OutputFolderLockedError, match="pid 1 on host other-node-7"):
        acquire_run_lock(str(tmp_path))


def test_release_and_reacquire_in_one_process(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        assert lock.held and (tmp_path / LOCK_FILE).exists()
    assert not (tmp_path / LOCK_FILE).exists()
    acquire_run_lock(str(tmp_path))  # a run that ended with an exception left its lock: the same process retakes it
    acquire_run_lock(str(tmp_path)).release()


def test_other_ranks_of_a_distributed_run_do_not_lock(tmp_path, monkeypatch, other_process):
    _holder(tmp_path, other_process.pid)
    monkeypatch.setenv("RANK", "1")
    assert not acquire_run_lock(str(tmp_path)).held


def test_finetuning_into_a_locked_folder_fails_before_any_work(tmp_path, other_process):
    from test_finetune_run import _args

    from hf_w2v2.finetune.run import run_finetuning

    out = tmp_path / "run"
    out.mkdir()
    _holder(out, other_process.pid)
    with pytest.raises(OutputFolderLockedError, match=f"output folder {out} is in use by another run: pid"):
        run_finetuning(*_args(out))
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written
