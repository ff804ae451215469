"""Files written whole (hf_w2v2.files): a failed write leaves the earlier file, or none, and no partial one."""

from __future__ import annotations

import pytest

from hf_w2v2.files import write_text


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
