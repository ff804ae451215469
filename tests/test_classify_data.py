"""Labelled clips: label column reading, class checks, counted skips, frame targets, the VAD corpus."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_w2v2.classify.data import (
    ClassificationCollator,
    ClipLengths,
    frame_targets,
    label_names,
    load_clips,
    parse_segments,
    read_labeled,
)
from hf_w2v2.classify.splits import write_speed_perturbed, write_split
from hf_w2v2.classify.vad import make_vad_corpus, trim
from hf_w2v2.data.audio import load_audio
from hf_w2v2.data.perturb import speed_perturb

FSDD = Path(__file__).parent / "fixtures" / "fsdd"


def test_reads_fsdd_fixture_with_any_label_column():
    digits = read_labeled(FSDD, "label")
    speakers = read_labeled(FSDD, "speaker_id")
    assert len(digits) == 36 and {c.label for c in digits} == {"0", "1", "2"}
    assert {c.label for c in speakers} == {"george", "jackson", "theo"}
    assert label_names(digits) == ["0", "1", "2"]


def test_missing_label_column_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no label column 'digit'.*columns are"):
        read_labeled(FSDD, "digit")


def test_one_class_is_a_clear_error(tmp_path):
    write_split(FSDD / "metadata.csv", "label=1", tmp_path / "ones.csv")
    clips = read_labeled(tmp_path / "ones.csv", "label")
    with pytest.raises(ValueError, match=r"label column 'label' of ones.csv has only the class '1'"):
        label_names(clips, "ones.csv", "label")


def test_numeric_labels_sort_as_numbers():
    from hf_w2v2.classify.data import LabeledClip

    clips = [LabeledClip(str(i), label) for i, label in enumerate(["10", "9", "2"])]
    assert label_names(clips) == ["2", "9", "10"]


def test_unseen_classes_and_short_clips_are_counted(tmp_path):
    sf.write(tmp_path / "short.wav", np.zeros(200, dtype=np.float32) + 0.1, 16000)
    rows = [{"file_name": str(FSDD / "audio" / "0_george_0.flac"), "label": "0"}]
    rows += [{"file_name": str(FSDD / "audio" / "2_theo_0.flac"), "label": "2"}]
    rows += [{"file_name": str(tmp_path / "short.wav"), "label": "0"}]
    with open(tmp_path / "m.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "label"])
        writer.writeheader()
        writer.writerows(rows)
    clips = read_labeled(tmp_path / "m.csv")
    dataset = load_clips("eval", clips, {"0": 0, "1": 1}, ClipLengths(min_samples=400), show_progress=False)
    report = dataset.report
    assert len(dataset) == 1 and report.kept == 1
    assert report.unseen_labels == {"2": 1} and len(report.too_short) == 1
    assert "1 with a class unseen in training" in report.format() and "1 shorter" in report.format()
    padded = load_clips("x", clips[:1], {"0": 0}, ClipLengths(400, pad_to_samples=50_000), show_progress=False)
    assert padded.audio[0].shape == (50_000,) and padded.report.padded == 1


def test_collator_pads_and_masks():
    batch = ClassificationCollator(True)(
        [{"input_values": np.ones(5, np.float32), "labels": 1}, {"input_values": np.ones(3, np.float32), "labels": 0}]
    )
    assert batch["input_values"].shape == (2, 5) and batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert batch["labels"].tolist() == [1, 0]


def test_segments_and_frame_targets():
    assert parse_segments("0.5-1.0; 1.5-2") == [(0.5, 1.0), (1.5, 2.0)]
    assert parse_segments("") == []
    with pytest.raises(ValueError, match="bad segment"):
        parse_segments("2-1", "clip.wav")
    targets = frame_targets([(0.1, 0.2)], num_frames=20, frame_step=320, frame_span=400)
    speech = targets.argmax(-1)
    centres = (np.arange(20) * 320 + 200) / 16000
    assert speech.tolist() == ((centres >= 0.1) & (centres < 0.2)).astype(int).tolist()
    assert targets.shape == (20, 2) and targets.sum() == 20


def test_vad_corpus_places_speech_at_labelled_offsets(tmp_path):
    sources = sorted(str(p) for p in (FSDD / "audio").glob("*.flac"))[:4]
    meta = make_vad_corpus(sources, tmp_path / "vad", num_clips=6, seconds=1.5, seed=0)
    clips = read_labeled(meta, "segments", allow_empty=True)
    assert len(clips) == 6
    for clip in clips:
        audio, sr = sf.read(clip.path)
        assert sr == 16000 and len(audio) == 24000
        for start, end in parse_segments(clip.label):
            inside = audio[int(start * sr) : int(end * sr)]
            assert np.abs(inside).max() > 0.05  # the placed recording is there
    assert trim(np.array([0.0, 0.0, 0.5, -0.2, 0.0])).tolist() == [0.5, -0.2]


def test_speed_perturb_scales_time_and_pitch():
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 500 * t).astype(np.float32)  # 1 s at 500 Hz
    for factor in (0.9, 1.1):
        fast = speed_perturb(tone, factor)
        assert len(fast) == round(16000 / factor)
        peak_hz = np.argmax(np.abs(np.fft.rfft(fast))) * 16000 / len(fast)
        assert abs(peak_hz - 500 * factor) < 3  # the pitch moves with the tempo
    assert np.array_equal(speed_perturb(tone, 1.0), tone)
    with pytest.raises(ValueError, match="must be positive"):
        speed_perturb(tone, 0.0)


def test_speed_perturbed_manifest_keeps_labels_and_adds_copies(tmp_path):
    write_split(FSDD / "metadata.csv", "label=1", tmp_path / "ones.csv")
    count = write_speed_perturbed(tmp_path / "ones.csv", tmp_path / "ones_sp.csv", [0.9, 1.1], progress=False)
    with open(tmp_path / "ones_sp.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    originals = [r for r in rows if r["speed"] == "1"]
    assert count == len(rows) == 3 * len(originals) == 36
    for row in rows:
        assert row["label"] == "1" and Path(row["file_name"]).is_file()
        audio = load_audio(row["file_name"])
        assert float(row["duration"]) == pytest.approx(len(audio) / 16000, abs=2e-3)
    slow = next(r for r in rows if r["speed"] == "0.9")
    stem = Path(slow["file_name"]).stem.split("-", 1)[1][: -len("_sp0.9")]  # 000000-<clip>_sp0.9
    source = next(r for r in originals if Path(r["file_name"]).stem == stem)
    assert len(load_audio(slow["file_name"])) == round(len(load_audio(source["file_name"])) / 0.9)
    assert slow["sample_rate"] == "16000" and slow["speaker_id"] == source["speaker_id"]
    assert (tmp_path / "ones_sp_audio").is_dir()
    with pytest.raises(ValueError, match="must be positive"):
        write_speed_perturbed(tmp_path / "ones.csv", tmp_path / "bad.csv", [0.0])
    # an audiofolder's own metadata (relative paths) works too: every written path is absolute
    write_speed_perturbed(FSDD / "metadata.csv", tmp_path / "all_sp.csv", [1.1], progress=False)
    with open(tmp_path / "all_sp.csv", newline="") as handle:
        names = [row["file_name"] for row in csv.DictReader(handle)]
    assert len(names) == 72 and all(Path(n).is_absolute() and Path(n).is_file() for n in names)
