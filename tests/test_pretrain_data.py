"""Unlabeled audio sources, crops, length grouping and the pre-training collator."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_w2v2.data.audio import find_audio_files
from hf_w2v2.data.sampler import LengthGroupedSampler, length_grouped_order
from hf_w2v2.data.sources import read_audio_paths
from hf_w2v2.pretrain.collator import DataCollatorForPreTraining
from hf_w2v2.pretrain.data import AudioClip, UnlabeledAudioDataset, crop_offset, scan_audio

FIXTURES = Path(__file__).parent / "fixtures" / "pretrain"


def test_folder_is_searched_recursively():
    files = find_audio_files(FIXTURES)
    names = {Path(f).name for f in files}
    assert len(files) == 8 and "stereo-8k.wav" in names and "broken.flac" in names
    assert any("nested" in f for f in files)
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_audio_files(FIXTURES / "missing")


def test_scan_reports_unreadable_and_filters_short(caplog):
    with caplog.at_level(logging.WARNING):
        result = scan_audio(read_audio_paths(FIXTURES), min_seconds=0.0, progress=False)
    assert [Path(p).name for p, _ in result.unreadable] == ["broken.flac"]
    assert "skipped 1 unreadable" in caplog.text
    stereo = next(c for c in result.clips if c.path.endswith("stereo-8k.wav"))
    assert abs(stereo.duration - 1.5) < 0.01  # 8 kHz length converted to 16 kHz samples
    assert len(result.clips) == 7
    long_only = scan_audio(read_audio_paths(FIXTURES), min_seconds=2.0, progress=False)
    assert len(long_only.clips) == 6 and long_only.too_short == 1


def test_manifest_formats(tmp_path):
    flacs = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.flac"))
    tsv = tmp_path / "train.tsv"
    tsv.write_text(f"{FIXTURES}\n" + "".join(f"{name}\t35000\n" for name in flacs))
    csv = tmp_path / "metadata.csv"
    csv.write_text("file_name,text\n" + "".join(f"{FIXTURES / name},x\n" for name in flacs))
    txt = tmp_path / "list.txt"
    txt.write_text("# comment\n" + "".join(f"{FIXTURES / name}\n" for name in flacs))
    expected = [str(FIXTURES / name) for name in flacs]
    assert read_audio_paths(tsv) == expected
    assert read_audio_paths(csv) == expected
    assert read_audio_paths(txt) == expected
    bad = tmp_path / "bad.csv"
    bad.write_text("transcript\nhello\n")
    with pytest.raises(ValueError, match="audio column"):
        read_audio_paths(bad)


def test_random_crops_are_deterministic_and_bounded():
    clips = scan_audio(read_audio_paths(FIXTURES), progress=False).clips
    dataset = UnlabeledAudioDataset(clips, max_seconds=1.0, seed=3)
    first = [dataset[i]["input_values"] for i in range(len(dataset))]
    assert all(len(a) == 16000 and a.dtype == np.float32 for a in first)
    again = UnlabeledAudioDataset(clips, max_seconds=1.0, seed=3)
    assert all(np.array_equal(a, again[i]["input_values"]) for i, a in enumerate(first))
    dataset.set_epoch(1)
    assert any(not np.array_equal(a, dataset[i]["input_values"]) for i, a in enumerate(first))
    assert dataset.lengths == [16000] * len(clips)
    offsets = {crop_offset(50_000, 16_000, seed=0, epoch=0, index=i) for i in range(50)}
    assert len(offsets) > 40 and min(offsets) >= 0 and max(offsets) <= 34_000
    assert crop_offset(10_000, 16_000, seed=0, epoch=0, index=0) == 0


def test_dataset_skips_a_file_broken_after_scanning(caplog):
    clips = [AudioClip(str(FIXTURES / "broken.flac"), 32000)] + scan_audio(
        read_audio_paths(FIXTURES), progress=False
    ).clips
    dataset = UnlabeledAudioDataset(clips, max_seconds=None)
    with caplog.at_level(logging.WARNING):
        item = dataset[0]
    assert len(item["input_values"]) == clips[1].num_samples
    assert "broken.flac" in caplog.text
    with pytest.raises(ValueError, match="no audio clips"):
        UnlabeledAudioDataset([])


def test_length_grouped_order_is_a_permutation_of_similar_lengths():
    lengths = torch.randint(1000, 100_000, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    order = length_grouped_order(lengths, 4, torch.Generator().manual_seed(1))
    assert sorted(order) == list(range(1000))
    assert lengths[order[0]] == max(lengths)  # the longest batch comes first
    spread = np.mean([np.ptp([lengths[i] for i in order[b : b + 4]]) for b in range(0, 1000, 4)])
    random_spread = np.mean([np.ptp(lengths[b : b + 4]) for b in range(0, 1000, 4)])
    assert spread < 0.2 * random_spread


def test_sampler_is_reproducible_per_epoch_and_forwards_the_epoch():
    dataset = UnlabeledAudioDataset([AudioClip("x.flac", n) for n in range(100, 200)], max_seconds=None)
    sampler = LengthGroupedSampler(dataset.lengths, 4, seed=5, dataset=dataset)
    first = list(sampler)
    assert first == list(LengthGroupedSampler(dataset.lengths, 4, seed=5))
    sampler.set_epoch(2)
    assert dataset.epoch == 2 and list(sampler) != first


def test_collator_pads_and_builds_attention_mask():
    collator = DataCollatorForPreTraining(normalize=True, pad_to_multiple_of=8)
    batch = collator([{"input_values": np.arange(10, dtype=np.float32)}, {"input_values": np.ones(5)}])
    assert batch["input_values"].shape == (2, 16) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].sum(1).tolist() == [10, 5]
    row = batch["input_values"][0, :10]
    assert abs(row.mean()) < 1e-5 and abs(row.std(unbiased=False) - 1) < 1e-3
    assert (batch["input_values"][1] == 0).all()  # a constant clip normalises to zeros; padding stays 0
    assert set(batch) == {"input_values", "attention_mask"}


def test_collator_crop_to_shortest_has_no_padding():
    collator = DataCollatorForPreTraining(
        normalize=False,
        return_attention_mask=False,
        crop_to_shortest=True,
        generator=torch.Generator().manual_seed(0),
    )
    batch = collator([{"input_values": np.arange(100, dtype=np.float32)}, {"input_values": np.arange(30)}])
    assert set(batch) == {"input_values"} and batch["input_values"].shape == (2, 30)
    start = int(batch["input_values"][0, 0])
    assert torch.equal(batch["input_values"][0], torch.arange(start, start + 30, dtype=torch.float32))
