"""hf_w2v2.quiet.library_notices_quieted: library notices off while a path is built, the process's logging
left as it was."""

from __future__ import annotations

import logging

import pytest

from hf_w2v2.quiet import library_notices_quieted


def bare_root(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """The root logger as a script that never configured logging has it (pytest gives it handlers when
    a test starts, after its fixtures: so each test calls this)."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    return root


def test_a_library_logging_on_the_root_logger_configures_nothing(monkeypatch, capsys) -> None:
    root = bare_root(monkeypatch)
    library = logging.getLogger("some.library")
    with library_notices_quieted(["some.library"]):
        logging.warning("consider pre-processing")  # as onnxruntime's quantiser does
        library.warning("a notice about its insides")
        library.error("an error still shows")
        logging.getLogger("hf_w2v2.inference.optimize").warning("a warning of ours still shows")
    assert root.handlers == [] and root.filters == []
    assert library.level == logging.NOTSET  # restored
    assert capsys.readouterr().err == "an error still shows\na warning of ours still shows\n"
    logging.getLogger("hf_w2v2.inference.optimize").warning("after")  # Python's last resort, as before
    assert capsys.readouterr().err == "after\n"


def test_nested_use_keeps_the_outer_diversion_and_a_handler_below_the_root_is_not_doubled(monkeypatch, capsys) -> None:
    root = bare_root(monkeypatch)
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    ours = logging.getLogger("hf_w2v2")
    ours.addHandler(handler)
    try:
        with library_notices_quieted():
            with library_notices_quieted():
                pass
            logging.warning("advice after the inner one ended")
            logging.getLogger("hf_w2v2.quiet.test").warning("handled by the package's handler")
    finally:
        ours.removeHandler(handler)
    assert root.handlers == [] and root.filters == []
    assert capsys.readouterr().err == ""  # not also on stderr: Python would not have used its last resort
    assert records == ["handled by the package's handler"]


def test_a_configured_root_logger_is_left_alone(monkeypatch, capsys) -> None:
    root = bare_root(monkeypatch)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    root.addHandler(handler)
    with library_notices_quieted():
        logging.warning("advice")
        logging.getLogger("hf_w2v2").warning("ours")
    assert root.handlers == [handler] and seen == ["ours"]


def test_entries_that_overlap_out_of_order_put_back_what_the_first_changed(monkeypatch, capsys) -> None:
    """Two threads building paths at once enter and leave in any order: the levels and the root logger's
    handlers come back as they were before the first, only when the last leaves."""
    root = bare_root(monkeypatch)
    library = logging.getLogger("another.library")
    first, second = library_notices_quieted(["another.library"]), library_notices_quieted(["another.library"])
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to enter leaves first
    assert library.level == logging.ERROR and len(root.handlers) == 1
    logging.warning("advice while the second is inside")
    second.__exit__(None, None, None)
    assert library.level == logging.NOTSET and root.handlers == [] and root.filters == []
    assert capsys.readouterr().err == ""
