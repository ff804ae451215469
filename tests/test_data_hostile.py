"""Hostile and broken data (issue 35, data half): listed paths confined to their dataset folder, make-shards
output folders, files cut short under lazy loading, repeated rows, non-UTF-8 listings and file names."""

from __future__ import annotations

import json
import logging
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_w2v2.classify.data import read_labeled
from hf_w2v2.classify.verification import read_trials
from hf_w2v2.cli import main
from hf_w2v2.data.audio import AudioLoadError, audio_info, check_audio_end, load_audio
from hf_w2v2.data.paths import ALLOW_OUTSIDE_ROOT_ENV, OutsideRootError, display_path, read_utf8
from hf_w2v2.data.shards import ShardStats, read_tar_shards
from hf_w2v2.data.sources import read_audio_paths, read_librispeech, read_manifest, read_source
from hf_w2v2.data.stream_sources import find_shards, read_shard

RATE = 16_000


def tone(path: Path, seconds: float = 0.5, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """``data/`` (the dataset: data/a.flac) next to ``outside/secret.flac``."""
    data = tmp_path / "data"
    tone(data / "a.flac")
    tone(tmp_path / "outside" / "secret.flac", freq=220.0)
    return data, tmp_path / "outside" / "secret.flac"


def write_listings(data: Path, entry: str) -> dict[str, Path]:
    """The same entry in every kind of listing the readers take."""
    (data / "m.csv").write_text(f"path,text\na.flac,A\n{entry},B\n", encoding="utf-8")
    (data / "m.jsonl").write_text(json.dumps({"path": entry, "text": "B"}) + "\n", encoding="utf-8")
    (data / "metadata.csv").write_text(f"file_name,text\n{entry},B\n", encoding="utf-8")
    (data / "list.txt").write_text(f"a.flac\n{entry}\n", encoding="utf-8")
    (data / "trials.txt").write_text(f"1 a.flac {entry}\n", encoding="utf-8")
    (data / "labels.csv").write_text(f"file_name,label\na.flac,x\n{entry},y\n", encoding="utf-8")
    return {name: data / name for name in ("m.csv", "m.jsonl", "metadata.csv", "list.txt", "trials.txt", "labels.csv")}


READERS = {
    "m.csv": lambda p: read_manifest(p),
    "m.jsonl": lambda p: read_manifest(p),
    "metadata.csv": lambda p: read_source(p.parent),
    "list.txt": lambda p: read_audio_paths(p),
    "trials.txt": lambda p: read_trials(p),
    "labels.csv": lambda p: read_labeled(p),
}


@pytest.mark.parametrize("listing", sorted(READERS))
def test_a_relative_path_leaving_the_dataset_folder_is_refused_by_every_reader(layout, listing, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_OUTSIDE_ROOT_ENV, raising=False)
    data, _ = layout
    paths = write_listings(data, "../outside/secret.flac")
    with pytest.raises(OutsideRootError, match=r"outside the dataset folder.*--allow-outside-root") as err:
        READERS[listing](paths[listing])
    assert str(paths[listing]) in str(err.value) and "../outside/secret.flac" in str(err.value)
    monkeypatch.setenv(ALLOW_OUTSIDE_ROOT_ENV, "1")  # the explicit way out, for jobs without the option
    assert READERS[listing](paths[listing])


def test_the_option_and_absolute_paths(layout, caplog, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_OUTSIDE_ROOT_ENV, raising=False)
    data, secret = layout
    manifest = write_listings(data, "../outside/secret.flac")["m.csv"]
    assert [u.path for u in read_manifest(manifest, allow_outside_root=True)][1] == str(secret)
    manifest.write_text(f"path,text\na.flac,A\n{secret},B\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        utts = read_manifest(manifest)  # an absolute path is taken as written, and logged
    assert utts[1].path == str(secret) and "1 file(s) listed by" in caplog.text and str(secret) in caplog.text
    manifest.write_text("path,text\nsub/../a.flac,A\n", encoding="utf-8")  # climbing back in is fine
    assert [u.path for u in read_manifest(manifest)] == [str(data / "a.flac")]


def test_librispeech_ids_and_fairseq_entries_stay_inside(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_OUTSIDE_ROOT_ENV, raising=False)
    root = tmp_path / "ls"
    tone(root / "1" / "2" / "1-2-0000.flac")
    tone(tmp_path / "evil.flac")
    (root / "1" / "2" / "1-2.trans.txt").write_text("1-2-0000 HI\n../../../evil HO\n", encoding="utf-8")
    with pytest.raises(OutsideRootError, match="1-2.trans.txt:2"):
        read_librispeech(root)
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"{root}\n1/2/1-2-0000.flac\t8000\n../evil.flac\t8000\n", encoding="utf-8")
    with pytest.raises(OutsideRootError, match="train.tsv:3"):
        read_manifest(tsv, text_column=None)


def test_a_jsonl_stream_row_outside_its_folder_is_skipped_and_counted(layout, monkeypatch) -> None:
    monkeypatch.delenv(ALLOW_OUTSIDE_ROOT_ENV, raising=False)
    data, _ = layout
    shard_dir = data / "jsonl"
    shard_dir.mkdir()
    rows = [{"path": "../a.flac", "text": "A"}, {"path": "../../outside/secret.flac", "text": "B"}]
    (shard_dir / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    stats = ShardStats()
    (shard,) = find_shards(str(shard_dir))
    items = list(read_shard(shard, stats))
    assert items == [] and len(stats.incomplete) == 2  # both climb out of the shard's folder
    assert "outside the dataset folder" in stats.incomplete[1][1]


def test_make_shards_copies_no_outside_file_and_guards_its_output_folder(layout, tmp_path: Path, capsys) -> None:
    data, secret = layout
    manifest = data / "m.csv"
    manifest.write_text(f"path,text\na.flac,A\n{secret},B\n", encoding="utf-8")
    out = tmp_path / "shards"
    assert main(["make-shards", str(manifest), str(out), "--quiet"]) == 2
    assert "lie outside its folder" in capsys.readouterr().err and not out.exists()
    assert main(["make-shards", str(manifest), str(out), "--quiet", "--allow-outside-root"]) == 0
    assert len(list(read_tar_shards(sorted(map(str, out.glob("*.tar")))))) == 2

    manifest.write_text("path,text\na.flac,A\n", encoding="utf-8")
    assert main(["make-shards", str(manifest), str(out), "--quiet", "--per_shard", "1"]) == 2
    assert "is not empty" in capsys.readouterr().err and "--overwrite" in capsys.readouterr().err + "--overwrite"
    assert main(["make-shards", str(manifest), str(out), "--quiet", "--overwrite"]) == 0
    shards = sorted(map(str, out.glob("*.tar")))
    assert [Path(s).name for s in shards] == ["shard-000000.tar"]  # replaced, not mixed
    assert [item["text"] for item in read_tar_shards(shards)] == ["A"]

    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["make-shards", str(manifest), str(out), "--quiet", "--overwrite"]) == 2
    assert "not shards" in capsys.readouterr().err and (out / "notes.txt").is_file()
    a_file = tmp_path / "file.tar"
    a_file.write_bytes(b"x")
    assert main(["make-shards", str(manifest), str(a_file), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_flac_cut_short_with_its_header_intact_is_found_without_decoding_it(tmp_path: Path) -> None:
    whole = tone(tmp_path / "whole.flac", seconds=2.0)
    cut = cut_in_half(tone(tmp_path / "cut.flac", seconds=2.0))
    check_audio_end(str(whole), audio_info(whole))
    info = audio_info(cut)
    assert info.num_frames == 2 * RATE  # the header still declares the full length
    with pytest.raises(AudioLoadError, match="truncated audio file .*cut.flac"):
        check_audio_end(str(cut), info)
    with pytest.raises(AudioLoadError, match="truncated"):
        check_audio_end(cut.read_bytes(), info)


def test_lazy_loading_counts_cut_flacs_as_unreadable_and_keeps_only_what_trains(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from transformers import Wav2Vec2Config

    from hf_w2v2.data.lazy import prepare_lazy_ctc_dataset
    from hf_w2v2.data.processor import build_processor_from_texts

    data = tmp_path / "d"
    for i in range(4):
        tone(data / f"c{i}.flac", seconds=1.0, freq=200.0 + 50 * i)
    cut_in_half(data / "c1.flac")
    (data / "metadata.csv").write_text("file_name,text\n" + "".join(f"c{i}.flac,AB\n" for i in range(4)), "utf-8")
    processor = build_processor_from_texts(Wav2Vec2Config(), ["AB"], tmp_path / "proc")
    lazy, report = prepare_lazy_ctc_dataset(
        read_source(data), processor, Wav2Vec2Config(), num_workers=1, show_progress=False
    )
    assert report.kept == 3 and len(report.unreadable) == 1 and "c1.flac" in report.unreadable[0][0]
    assert "kept 3/4" in report.format() and "1 unreadable" in report.format()
    assert sorted(Path(n).name for n in lazy.names) == ["c0.flac", "c2.flac", "c3.flac"]


def test_a_file_listed_twice_is_kept_once_and_two_transcripts_are_refused(layout, caplog) -> None:
    data, _ = layout
    tone(data / "b.flac")
    metadata = data / "metadata.csv"
    metadata.write_text("file_name,text\na.flac,A\nb.flac,B\na.flac,A\n./a.flac,A\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        utts = read_source(data)
    assert [Path(u.path or "").name for u in utts] == ["a.flac", "b.flac"]
    assert "lists 1 file(s) more than once" in caplog.text and "skipped 2 repeated row(s)" in caplog.text
    metadata.write_text("file_name,text\na.flac,A\nb.flac,B\na.flac,OTHER\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"listed twice with different 'text' values: 'A' .*:2.* 'OTHER' .*:4"):
        read_source(data)
    (data / "labels.csv").write_text("file_name,label\na.flac,x\na.flac,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="different 'label' values"):
        read_labeled(data / "labels.csv")


@pytest.mark.parametrize("name", ["m.csv", "m.jsonl", "list.txt", "trials.txt", "metadata.csv"])
def test_a_latin1_listing_is_an_error_naming_the_file_line_and_fix(layout, name: str) -> None:
    data, _ = layout
    path = write_listings(data, "a.flac")[name]
    path.write_bytes(path.read_bytes().replace(b"a.flac", "caf\u00e9.flac".encode("latin-1")))
    reader = READERS.get(name, READERS["m.csv"])
    with pytest.raises(ValueError, match=r"not UTF-8 text \(byte 0xe9.*iconv") as err:
        reader(path)
    assert f"{path}:" in str(err.value)


def test_read_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"ok\nok\nbad \xff\n")
    with pytest.raises(ValueError, match=r"t.txt:3: this file is not UTF-8"):
        read_utf8(path)


@pytest.fixture
def non_utf8_clip(tmp_path: Path) -> str:
    """A clip whose file name is Latin-1 bytes (``café.flac``), as Linux keeps it."""
    folder = tmp_path / "odd"
    folder.mkdir()
    tone(tmp_path / "plain.flac", seconds=1.0)
    target = os.fsencode(str(folder)) + b"/caf\xe9.flac"
    os.rename(os.fsencode(str(tmp_path / "plain.flac")), target)
    return os.fsdecode(target)


def test_non_utf8_file_names_decode_and_are_shown_escaped(non_utf8_clip: str) -> None:
    assert load_audio(non_utf8_clip).shape == (RATE,)
    assert audio_info(non_utf8_clip).num_frames == RATE
    assert display_path(non_utf8_clip).endswith("caf\\xe9.flac")
    assert read_audio_paths(os.path.dirname(non_utf8_clip)) == [non_utf8_clip]


def test_non_utf8_file_names_go_through_data_preparation(non_utf8_clip: str, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from transformers import Wav2Vec2Config

    from hf_w2v2.data.lazy import prepare_lazy_ctc_dataset
    from hf_w2v2.data.prepare import prepare_ctc_dataset
    from hf_w2v2.data.processor import build_processor_from_texts
    from hf_w2v2.data.sources import Utterance

    processor = build_processor_from_texts(Wav2Vec2Config(), ["AB"], tmp_path / "proc")
    utts = [Utterance(id="c", text="AB", path=non_utf8_clip)]
    eager, report = prepare_ctc_dataset(utts, processor, Wav2Vec2Config(), num_workers=1, show_progress=False)
    assert report.kept == 1 and eager[0]["name"].endswith("caf\\xe9.flac")
    lazy, _ = prepare_lazy_ctc_dataset(utts, processor, Wav2Vec2Config(), num_workers=1, show_progress=False)
    assert lazy[0]["input_length"] == RATE


def test_shard_members_are_never_outside_paths(layout, tmp_path: Path) -> None:
    data, secret = layout
    (data / "m.csv").write_text(f"path,text\na.flac,A\n{secret},B\n", encoding="utf-8")
    out = tmp_path / "s"
    assert main(["make-shards", str(data / "m.csv"), str(out), "--quiet", "--allow-outside-root"]) == 0
    with tarfile.open(next(out.glob("*.tar"))) as tar:
        assert all(".." not in name and not name.startswith("/") for name in tar.getnames())


def test_align_warns_naming_out_of_vocabulary_characters_and_refuses_a_transcript_without_known_ones(caplog) -> None:
    from hf_w2v2.decoding.alphabet import CTCAlphabet
    from hf_w2v2.inference.align import check_transcript

    alphabet = CTCAlphabet.from_vocab({"[PAD]": 0, "[UNK]": 1, "|": 2, "A": 3, "B": 4, "'": 5})
    assert check_transcript("ab ba'", alphabet) == []
    with caplog.at_level(logging.WARNING):
        assert check_transcript("ab, éa!", alphabet) == [",", "é", "!"]
    assert "3 character(s) of the transcript are not in the model's vocabulary: ',é!'" in caplog.text
    for hopeless in ("?!... ,", "日本語"):
        with pytest.raises(ValueError, match="no character of the transcript .* nothing to align"):
            check_transcript(hopeless, alphabet)


def test_align_command_refuses_a_punctuation_only_transcript(capsys) -> None:
    shipped = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
    clip = Path(__file__).parent / "fixtures" / "audio" / "speech_16k.flac"
    assert main(["align", str(shipped), str(clip), "?!.", "--device", "cpu"]) == 2
    assert "no character of the transcript '?!.'" in capsys.readouterr().err


@pytest.fixture
def tiny_classifier(tmp_path: Path) -> str:
    import torch

    from hf_w2v2.models.classification import Wav2Vec2ForSequenceClassification
    from hf_w2v2.models.configuration import config_from_name

    torch.manual_seed(0)
    config = config_from_name("tiny", num_labels=2, feat_extract_norm="layer")
    config.architectures = ["Wav2Vec2ForSequenceClassification"]
    Wav2Vec2ForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    return str(tmp_path / "clf")


def test_classify_refuses_a_clip_shorter_than_one_frame_as_transcribe_does(tiny_classifier, tmp_path, capsys) -> None:
    blip = tmp_path / "blip.wav"
    sf.write(blip, np.full(96, 0.1, dtype=np.float32), RATE)  # 6 ms
    fine = tone(tmp_path / "fine.flac")
    assert main(["classify", tiny_classifier, str(blip), str(fine)]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert "labels" not in lines[0] and "blip.wav (6 ms): audio is too short: 96 samples" in lines[0]["error"]
    assert len(lines[1]["labels"]) == 2 and "1 of 2 files could not be classified" in captured.err


def test_classify_and_embed_take_non_utf8_file_names(tiny_classifier, non_utf8_clip: str, capsys) -> None:
    assert main(["classify", tiny_classifier, os.path.dirname(non_utf8_clip)]) == 0
    assert json.loads(capsys.readouterr().out)["file"].endswith("caf\\xe9.flac")


def test_embed_and_pretraining_scan_take_non_utf8_file_names(non_utf8_clip: str, tmp_path: Path, capsys) -> None:
    import torch

    from hf_w2v2.models.configuration import config_from_name
    from hf_w2v2.models.xvector import Wav2Vec2ForXVector
    from hf_w2v2.pretrain.data import scan_audio

    torch.manual_seed(0)
    config = config_from_name("tiny", feat_extract_norm="layer")
    config.architectures = ["Wav2Vec2ForXVector"]
    Wav2Vec2ForXVector(config).save_pretrained(tmp_path / "xv")
    out = tmp_path / "e.npz"
    assert main(["embed", str(tmp_path / "xv"), os.path.dirname(non_utf8_clip), "--output", str(out)]) == 0
    assert np.load(out)["embeddings"].shape[0] == 1
    scan = scan_audio(read_audio_paths(os.path.dirname(non_utf8_clip)), progress=False)
    assert len(scan.clips) == 1 and not scan.unreadable


def test_transcription_hands_freed_memory_back_after_each_group(monkeypatch) -> None:
    """The peak stays flat in the number of files (bench/transcribe_memory.py measures it): each group
    of files is freed and trimmed before the next; the thresholds are fixed where glibc is the C library."""
    import ctypes.util

    from hf_w2v2.inference import memory, transcribe
    from hf_w2v2.inference.transcribe import Transcriber

    if ctypes.util.find_library("c") and "glibc" in os.confstr("CS_GNU_LIBC_VERSION").lower():
        assert memory.limit_allocator_caching()
    memory.release_freed_memory()
    shipped = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
    clip = str(Path(__file__).parent / "fixtures" / "audio" / "speech_16k.flac")
    trims: list[int] = []
    monkeypatch.setattr(transcribe, "release_freed_memory", lambda: trims.append(1))
    results = Transcriber.from_pretrained(shipped, device="cpu").transcribe_files(
        [clip] * 5, group_size=2, progress=False
    )
    assert len(results) == 5 and all(r.transcription is not None for r in results) and len(trims) == 3


def test_split_tools_name_a_latin1_metadata_file(tmp_path: Path) -> None:
    from hf_w2v2.classify.splits import write_split

    metadata = tmp_path / "metadata.csv"
    metadata.write_bytes("file_name,label\ncaf\u00e9.wav,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"metadata.csv:2: this manifest is not UTF-8"):
        write_split(metadata, "label=1", tmp_path / "out.csv")
