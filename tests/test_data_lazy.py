"""Lazy CTC data (hf_w2v2.data.lazy) and batches by audio seconds (hf_w2v2.data.sampler), issue 24."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("datasets")

from accelerate.data_loader import BatchSamplerShard
from transformers import Wav2Vec2Config

from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.lazy import prepare_lazy_ctc_dataset
from hf_w2v2.data.prepare import prepare_ctc_dataset
from hf_w2v2.data.processor import build_processor_from_texts
from hf_w2v2.data.sampler import DurationBatchSampler, check_fits, duration_batches
from hf_w2v2.data.sources import read_audiofolder

GEOMETRY = Wav2Vec2Config()
FIXTURES = Path(__file__).parent / "fixtures"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'"


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory):
    return build_processor_from_texts(Wav2Vec2Config(), [LETTERS.replace("K", "")], tmp_path_factory.mktemp("proc"))


@pytest.mark.parametrize("folder", ["audio", "finetune/train"])
def test_lazy_items_and_counts_equal_the_eager_dataset(processor, folder: str) -> None:
    utts = read_audiofolder(FIXTURES / folder)
    filters = CTCFilter(max_duration=4.0)
    eager, eager_report = prepare_ctc_dataset(utts, processor, GEOMETRY, filters, num_workers=2, show_progress=False)
    lazy, lazy_report = prepare_lazy_ctc_dataset(utts, processor, GEOMETRY, filters, num_workers=2, show_progress=False)
    assert lazy_report.format() == eager_report.format()  # every drop counted the same, before any decoding
    assert len(lazy) == len(eager) and lazy.lengths == [int(n) for n in eager["input_length"]]
    for i in range(len(eager)):
        want, got = eager[i], lazy[i]
        np.testing.assert_allclose(got["input_values"], want["input_values"], atol=1e-6)
        assert list(got["labels"]) == list(want["labels"]) and got["name"] == want["name"]
        assert got["input_length"] == want["input_length"]


def test_lazy_dataset_holds_no_audio(processor) -> None:
    utts = read_audiofolder(FIXTURES / "finetune" / "train")
    eager, _ = prepare_ctc_dataset(utts, processor, GEOMETRY, num_workers=1, show_progress=False)
    lazy, _ = prepare_lazy_ctc_dataset(utts, processor, GEOMETRY, num_workers=1, show_progress=False)
    audio_bytes = sum(4 * int(n) for n in eager["input_length"])
    assert len(pickle.dumps(lazy)) < audio_bytes / 50  # what a DataLoader worker receives: paths and labels


def test_a_clip_that_stops_decoding_is_replaced(processor, tmp_path: Path) -> None:
    utts = read_audiofolder(FIXTURES / "finetune" / "train")[:3]
    lazy, _ = prepare_lazy_ctc_dataset(utts, processor, GEOMETRY, num_workers=1, show_progress=False)
    broken = Path(lazy.clips[0].utterance.path or "")
    copy = tmp_path / broken.name
    copy.write_bytes(broken.read_bytes()[:100])  # header only: decoding fails
    object.__setattr__(lazy.clips[0].utterance, "path", str(copy))
    assert lazy[0]["name"] == lazy.clips[1].utterance.name


def _lengths(n: int, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(8_000, 160_000, (n,), generator=g).tolist()


def test_duration_batches_cover_every_item_within_budget_longest_first() -> None:
    lengths = _lengths(500)
    budget = 16_000 * 40
    batches = duration_batches(lengths, budget, torch.Generator().manual_seed(0), longest_first=2)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(len(b) * max(lengths[i] for i in b) <= budget for b in batches)
    longest = max(range(500), key=lambda i: lengths[i])
    assert longest in batches[0]  # an out-of-memory error shows at step 1
    second = max((i for i in range(500) if i not in batches[0]), key=lambda i: lengths[i])
    assert second in batches[1] or max(lengths[i] for i in batches[1]) == lengths[second]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert sum(lengths) / padded > 0.9  # length bucketing keeps padding low
    again = duration_batches(lengths, budget, torch.Generator().manual_seed(0), longest_first=2)
    other = duration_batches(lengths, budget, torch.Generator().manual_seed(1), longest_first=2)
    assert again == batches and other != batches


def test_budget_below_the_longest_clip_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"max_batch_seconds=2 is shorter than the longest kept clip \(3.00 s\)"):
        check_fits([16_000, 48_000], 32_000)
    with pytest.raises(ValueError, match="shorter than the longest kept clip"):
        DurationBatchSampler([16_000, 48_000], 32_000)


def test_every_rank_gets_its_share_of_the_same_batches_and_new_ones_each_epoch() -> None:
    lengths = _lengths(300)
    samplers = [DurationBatchSampler(lengths, 16_000 * 30, seed=3, num_replicas=2) for _ in range(2)]
    shards = [BatchSamplerShard(s, num_processes=2, process_index=r) for r, s in enumerate(samplers)]
    epoch0 = [list(shard) for shard in shards]
    seen = [i for rank in epoch0 for b in rank for i in b]
    assert len(epoch0[0]) == len(epoch0[1]) and set(seen) == set(range(300))
    assert set(i for b in epoch0[0] for i in b).isdisjoint(i for b in epoch0[1][:-1] for i in b)
    longest = max(range(300), key=lambda i: lengths[i])
    assert longest in epoch0[0][0] or longest in epoch0[1][0]
    for sampler in samplers:  # what accelerate's DataLoaderShard.set_epoch reaches on a sharded batch sampler
        sampler.sampler.set_epoch(1)
    assert [list(shard) for shard in shards] != epoch0
