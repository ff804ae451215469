"""Ctrl-C / SIGTERM during training (the whole run, resumed to the uninterrupted weights: test_kill_resume)."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from hf_w2v2.exits import exit_on_interrupt
from hf_w2v2.training.interrupt import InterruptCallback, TrainingInterrupted


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signal handlers: main thread")
def test_the_first_signal_stops_after_the_step_and_a_second_at_once(tmp_path) -> None:
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", save_strategy="no")
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    callback, state, control = InterruptCallback(), TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    try:
        state.global_step = 6
        callback.on_step_end(args, state, control)
        assert not control.should_training_stop  # no signal yet
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's preemption: handled, the process lives on
        state.global_step = 7
        callback.on_step_end(args, state, control)
        assert control.should_training_stop and callback.stopped_at == 7
        assert control.should_save  # with save_strategy "no" too: the work so far is kept
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second: now, as the stock Trainer
            signal.sigtimedwait([], 0.5)  # (the handler runs at once; this only waits should it not)
        assert {s: signal.getsignal(s) for s in before} == before  # put back by the second signal
    finally:
        callback.restore()
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signal handlers: main thread")
def test_a_rank_stopped_by_another_ranks_signal_takes_its_own_late_one_as_the_first(tmp_path, monkeypatch) -> None:
    """Under torchrun the ranks get Ctrl-C at slightly different times: a rank that stopped on another's signal
    (agreed at the step end) and then receives its own must not take it for the second (stop at once: it would
    leave the others waiting in the save)."""
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    callback, state, control = InterruptCallback(), TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    try:
        monkeypatch.setattr(callback, "_agreed", lambda args: int(signal.SIGINT))  # rank 0's, through all_reduce
        state.global_step = 3
        callback.on_step_end(args, state, control)
        assert control.should_training_stop and callback.stopped_at == 3 and callback.received is None
        os.kill(os.getpid(), signal.SIGINT)  # this rank's own, late: no KeyboardInterrupt
        assert callback.received == signal.SIGINT
    finally:
        callback.restore()


def test_a_script_ends_with_the_runs_message_and_the_signals_exit_code(capsys) -> None:
    stop = TrainingInterrupted(signal.SIGTERM, 7, 100, "out/checkpoint-7")
    with pytest.raises(SystemExit) as ended, exit_on_interrupt():
        raise stop
    assert ended.value.code == 143 and capsys.readouterr().err == (
        "SIGTERM: training stopped at step 7 of 100 and saved out/checkpoint-7; "
        "resume with --resume_from_checkpoint latest (the same --output_dir)\n"
    )
    with pytest.raises(SystemExit) as ended, exit_on_interrupt():
        raise KeyboardInterrupt  # a Ctrl-C anywhere else: loading data, evaluating
    assert ended.value.code == 130 and capsys.readouterr().err == "interrupted\n"
    assert "no checkpoint was saved" in str(TrainingInterrupted(signal.SIGINT, 3, 8, None))
