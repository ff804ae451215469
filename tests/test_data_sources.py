"""Reading audiofolders, LibriSpeech trees, manifests and HF datasets (hf_w2v2.data.sources)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hf_w2v2.data.sources import (
    MissingAudioFilesError,
    read_audiofolder,
    read_librispeech,
    read_manifest,
    read_source,
)

FIXTURES = Path(__file__).parent / "fixtures"
AUDIO = FIXTURES / "audio"


def test_audiofolder_reads_metadata_with_paths_relative_to_folder() -> None:
    utts = read_audiofolder(AUDIO)
    assert [u.id for u in utts][:2] == ["speech_16k", "tone_8k"]
    assert utts[0].text == "TEN OF CLUBS" and Path(utts[0].path) == AUDIO / "speech_16k.flac"
    assert read_source(AUDIO) == utts


@pytest.mark.parametrize("name", ["manifest.csv", "manifest.jsonl"])
def test_manifests_csv_and_jsonl(name: str) -> None:
    utts = read_source(FIXTURES / name)
    assert len(utts) == 3 and all(Path(u.path).is_file() for u in utts)
    assert utts[2].text == "Hi-fi tone!"


def test_manifest_without_text_column_is_unlabeled_or_an_error(tmp_path: Path) -> None:
    assert all(u.text is None for u in read_manifest(FIXTURES / "manifest.csv", text_column=None))
    with pytest.raises(ValueError, match="no text column 'sentence'"):
        read_manifest(FIXTURES / "manifest.csv", text_column="sentence")
    bad = tmp_path / "m.csv"
    bad.write_text("clip,text\nx.wav,A\n")
    with pytest.raises(ValueError, match="no audio column"):
        read_manifest(bad)


def test_missing_files_fail_fast_with_the_full_list() -> None:
    with pytest.raises(MissingAudioFilesError) as info:
        read_source(FIXTURES / "manifest_missing.csv")
    assert [Path(p).name for p in info.value.missing] == ["nope_1.flac", "nope_2.wav"]
    assert "2 audio file(s)" in str(info.value) and "nope_2.wav" in str(info.value)
    assert isinstance(info.value, ValueError)


def _librispeech_tree(root: Path) -> Path:
    chapter = root / "19" / "198"
    chapter.mkdir(parents=True)
    shutil.copy(AUDIO / "speech_16k.flac", chapter / "19-198-0001.flac")
    shutil.copy(AUDIO / "tone_8k.wav", chapter / "19-198-0000.wav")
    (chapter / "19-198.trans.txt").write_text("19-198-0001 TEN OF CLUBS\n19-198-0000 A TONE\n")
    return chapter


def test_librispeech_layout(tmp_path: Path) -> None:
    _librispeech_tree(tmp_path)
    utts = read_source(tmp_path)
    assert [(u.id, u.text) for u in utts] == [("19-198-0000", "A TONE"), ("19-198-0001", "TEN OF CLUBS")]
    assert utts[0].path.endswith("19-198-0000.wav")


def test_librispeech_missing_audio_names_the_transcript_line(tmp_path: Path) -> None:
    chapter = _librispeech_tree(tmp_path)
    with (chapter / "19-198.trans.txt").open("a") as handle:
        handle.write("19-198-0002 LOST\n")
    with pytest.raises(MissingAudioFilesError, match=r"19-198-0002.flac \(from 19-198.trans.txt:3\)"):
        read_librispeech(tmp_path)


def test_unknown_source_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell"):
        read_source(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        read_source(tmp_path / "nothing")


def test_hf_dataset_with_audio_column_and_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    paths = [str(AUDIO / "speech_16k.flac"), str(AUDIO / "tone_8k.wav")]
    ds = datasets.Dataset.from_dict({"audio": paths, "sentence": ["TEN OF CLUBS", "A TONE"]})
    ds = ds.cast_column("audio", datasets.Audio(sampling_rate=16000))
    utts = read_source(ds, text_column="sentence")
    assert [u.text for u in utts] == ["TEN OF CLUBS", "A TONE"] and utts[1].path == paths[1]
    embedded = datasets.Dataset.from_dict(
        {"audio": [{"bytes": Path(paths[0]).read_bytes(), "path": "x.flac"}], "text": ["TEN OF CLUBS"]}
    ).cast_column("audio", datasets.Audio())
    datasets.DatasetDict({"train": ds.rename_column("sentence", "text"), "dev": embedded}).save_to_disk(tmp_path / "dd")
    splits = read_source(tmp_path / "dd")
    assert sorted(splits) == ["dev", "train"]
    assert splits["dev"][0].audio_bytes == Path(paths[0]).read_bytes() and splits["dev"][0].path == "x.flac"
    assert [u.id for u in splits["train"]] == ["speech_16k", "tone_8k"]


def test_hf_dataset_with_plain_path_column_and_missing_files() -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"file": [str(AUDIO / "nope.wav")], "text": ["X"]})
    with pytest.raises(MissingAudioFilesError, match="nope.wav"):
        read_source(ds, audio_column="file")
    with pytest.raises(ValueError, match="no audio column 'audio'"):
        read_source(ds)


def test_csv_row_with_more_fields_than_header_fails_naming_the_line(tmp_path: Path) -> None:
    """Issue 23.5: ``a.flac,HELLO, WORLD, AGAIN`` used to give the transcript ``HELLO`` without a word."""
    shutil.copy(AUDIO / "speech_16k.flac", tmp_path / "a.flac")
    (tmp_path / "metadata.csv").write_text("file_name,text\na.flac,HELLO, WORLD, AGAIN\n")
    with pytest.raises(ValueError, match=r"metadata.csv:2: 4 fields but the header has 2"):
        read_source(tmp_path)
    (tmp_path / "metadata.csv").write_text('file_name,text\na.flac,"HELLO, WORLD, AGAIN"\n')
    assert [u.text for u in read_source(tmp_path)] == ["HELLO, WORLD, AGAIN"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "HELLO"}', r"metadata.jsonl:2: no 'file_name' key"),
        ('["a.flac", "HELLO"]', r"metadata.jsonl:2: expected a JSON object per line, got list"),
        ('"a.flac"', r"metadata.jsonl:2: expected a JSON object per line, got str"),
        ('{"file_name": 3, "text": "HELLO"}', r"metadata.jsonl:2: an empty or non-string \(3\) 'file_name'"),
        ('{"file_name": "a.flac"}', r"metadata.jsonl:2: no 'text' key"),
    ],
)
def test_jsonl_bad_rows_name_the_line_and_the_key(tmp_path: Path, line: str, message: str) -> None:
    """Issue 23.12: JSONL rows without ``file_name`` or not objects used to crash with a KeyError/TypeError."""
    shutil.copy(AUDIO / "speech_16k.flac", tmp_path / "a.flac")
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.flac", "text": "OK"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_source(tmp_path)
