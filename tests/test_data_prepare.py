"""From utterances to a Trainer-ready dataset, with filter counts (hf_w2v2.data.prepare)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

from transformers import Wav2Vec2Config

from hf_w2v2.data.audio import normalize_waveform
from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.prepare import ctc_min_frames, prepare_ctc_dataset
from hf_w2v2.data.processor import build_processor_from_texts
from hf_w2v2.data.sources import Utterance, read_audiofolder

GEOMETRY = Wav2Vec2Config()  # the paper's feature encoder (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2)

AUDIO = Path(__file__).parent / "fixtures" / "audio"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'"


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory):
    return build_processor_from_texts(Wav2Vec2Config(), [LETTERS.replace("K", "")], tmp_path_factory.mktemp("proc"))


def test_fixture_folder_counts_every_drop_and_logs_unreadable(processor, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hf_w2v2.data.prepare"):
        ds, report = prepare_ctc_dataset(
            read_audiofolder(AUDIO), processor, GEOMETRY, num_workers=2, show_progress=False
        )
    assert len(ds) == report.kept == 3 and report.total == 6
    assert [Path(p).name for p in report.empty_transcript] == ["silence_16k.flac"]
    assert sorted(Path(name).name for name, _ in report.unreadable) == ["corrupt.flac", "empty.wav"]
    assert "no samples" in dict(report.unreadable)[str(AUDIO / "empty.wav")]
    assert report.oov_chars == {"K": 2} and report.oov_utterances == 2  # "okay", "broken" (counted before decoding)
    assert "skipped 2 unreadable audio file(s)" in caplog.text and "corrupt.flac" in caplog.text
    assert "kept 3/6" in caplog.text
    assert report.kept_seconds == pytest.approx(1.095 + 0.5 + 0.25, abs=0.01)


def test_columns_match_feature_extractor_and_tokenizer(processor) -> None:
    utts = read_audiofolder(AUDIO)[:3]
    ds, _ = prepare_ctc_dataset(utts, processor, GEOMETRY, show_progress=False)
    assert ds.column_names == ["input_values", "input_length", "labels", "name"]
    assert list(ds["name"]) == [u.name for u in utts]
    item = ds[1]  # tone_8k.wav
    assert item["input_values"].dtype == np.float32 and item["input_length"] == 8000 == len(item["input_values"])
    from hf_w2v2.data.audio import load_audio

    expected = processor.feature_extractor(load_audio(utts[1].path), sampling_rate=16000).input_values[0]
    np.testing.assert_allclose(item["input_values"], expected, atol=1e-6)
    assert processor.tokenizer.decode(item["labels"], group_tokens=False) == "A TONE O[UNK]AY"


def test_duration_filters_and_drop_oov(processor) -> None:
    utts = read_audiofolder(AUDIO)[:3]  # 1.095 s, 0.5 s, 0.25 s
    ds, report = prepare_ctc_dataset(
        utts, processor, GEOMETRY, CTCFilter(min_duration=0.3, max_duration=1.0), show_progress=False
    )
    assert len(ds) == 1 and len(report.too_short) == 1 and len(report.too_long) == 1
    ds, report = prepare_ctc_dataset(utts, processor, GEOMETRY, CTCFilter(drop_oov=True), show_progress=False)
    assert len(ds) == 2 and len(report.dropped_oov) == 1


def test_transcript_longer_than_ctc_allows_is_too_short(processor) -> None:
    path = str(AUDIO / "tone_48k_stereo.flac")  # 0.25 s -> 12 frames
    utts = [Utterance("ok", "AB", path), Utterance("long", "A" * 10 + "B" * 10, path)]
    ds, report = prepare_ctc_dataset(utts, processor, GEOMETRY, show_progress=False)
    assert len(ds) == 1 and report.too_short == [path]
    assert ctc_min_frames([1, 1, 2, 3, 3, 3]) == 6 + 3


def test_nothing_left_raises_with_the_report(processor) -> None:
    with pytest.raises(ValueError, match="no utterance left.*2 unreadable"):
        prepare_ctc_dataset(read_audiofolder(AUDIO)[3:5], processor, GEOMETRY, show_progress=False)


def test_cache_file_is_memory_mapped(processor, tmp_path: Path) -> None:
    utts = read_audiofolder(AUDIO)[:3]
    in_memory, _ = prepare_ctc_dataset(utts, processor, GEOMETRY, show_progress=False)
    on_disk, _ = prepare_ctc_dataset(
        utts, processor, GEOMETRY, cache_file=tmp_path / "train.arrow", show_progress=False
    )
    assert (tmp_path / "train.arrow").stat().st_size > 4 * (17526 + 8000 + 4000)
    for a, b in zip(in_memory, on_disk):
        np.testing.assert_array_equal(a["input_values"], b["input_values"])
        np.testing.assert_array_equal(a["labels"], b["labels"])


def test_normalize_waveform_matches_feature_extractor(processor) -> None:
    audio = np.random.default_rng(0).standard_normal(3000).astype(np.float32) * 0.3 + 0.1
    expected = processor.feature_extractor(audio, sampling_rate=16000).input_values[0]
    np.testing.assert_allclose(normalize_waveform(audio), expected, atol=1e-6)
