"""hf_w2v2.files: files written whole (a failed write leaves the earlier file, or none, and no partial one),
and the exclusive lock that one measurement at a time holds."""

from __future__ import annotations

import threading
import time

import pytest

from hf_w2v2.files import lock_exclusively, write_text


def test_a_text_file_is_written_whole_or_not_at_all(tmp_path) -> None:
    """The CLI's transcripts and subtitles: a write that fails half-way (here a character UTF-8 cannot hold,
    after a first line; a Ctrl-C or a full disk alike) leaves the file of the last run as it was."""
    target = tmp_path / "clip.srt"
    write_text(str(target), "1\nhello\n")
    assert target.read_text(encoding="utf-8") == "1\nhello\n"
    with pytest.raises(UnicodeEncodeError):
        write_text(str(target), "2\nworld\n" * 1000 + "\ud800")
    assert target.read_text(encoding="utf-8") == "1\nhello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.srt"]  # no partial file left


def test_an_exclusive_lock_is_waited_for_and_missing_where_none_can_be_had(tmp_path) -> None:
    """files.lock_exclusively: a second holder waits (told once) until the first lets go; where the lock file
    cannot be made, the block runs unlocked."""
    path = str(tmp_path / ".lock")
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with lock_exclusively(path) as locked:
            assert locked
            first_in.set()
            time.sleep(0.3)
            order.append("first out")

    holder = threading.Thread(target=first)
    holder.start()
    first_in.wait()
    with lock_exclusively(path, waiting=lambda: order.append("waiting")) as locked:
        order.append("second in")
    holder.join()
    assert locked and order == ["waiting", "first out", "second in"]
    with lock_exclusively(str(tmp_path / "no such folder" / ".lock")) as locked:
        assert not locked  # (the block runs all the same)
