"""Streamed training sets (issue 24.2): tar shards written and read back, bad shards counted and skipped,
JSONL/Parquet/audiofolder sources, the filters of prepare.py, and the split across ranks and workers."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import logging
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainingArguments, Wav2Vec2Config

from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.prepare import prepare_ctc_dataset
from hf_w2v2.data.processor import build_processor_from_texts
from hf_w2v2.data.shards import ShardStats, read_tar_shard, read_tar_shards, write_shards
from hf_w2v2.data.sources import Utterance, read_audiofolder
from hf_w2v2.data.stream import CTCDecoder, StreamReading, ctc_stream, stream_dataset
from hf_w2v2.data.stream_sources import ROW_SHARDS, find_all_shards, find_shards, read_shard, shard_texts
from hf_w2v2.pretrain.stream import CropDecoder
from hf_w2v2.training.streaming import check_stream_args, configure_streaming

FIXTURES = Path(__file__).parent / "fixtures"
TRAIN = FIXTURES / "finetune" / "train"
AUDIO = FIXTURES / "audio"
GEOMETRY = Wav2Vec2Config()
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ' "


@pytest.fixture(scope="module")
def utterances() -> list[Utterance]:
    return read_audiofolder(TRAIN)  # 16 clips of 1.5-3 s


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory):
    return build_processor_from_texts(GEOMETRY, [LETTERS], tmp_path_factory.mktemp("proc"))


def _names(items) -> list[str]:
    return [item["name"].rsplit(":", 1)[-1] for item in items]


def test_written_shards_read_back_every_utterance_with_its_audio_and_text(tmp_path: Path, utterances) -> None:
    paths = write_shards(utterances, tmp_path / "a", 5, show_progress=False)
    assert [Path(p).name for p in paths] == [f"shard-00000{i}.tar" for i in range(4)]  # 5 + 5 + 5 + 1
    stats = ShardStats()
    items = list(read_tar_shards(paths, stats))
    assert _names(items) == [u.id for u in utterances] and [i["text"] for i in items] == [u.text for u in utterances]
    assert items[0]["audio_bytes"] == Path(utterances[0].path or "").read_bytes()
    assert stats.items == 16 and stats.shards == 4 and not stats.bad_shards
    again = write_shards(utterances, tmp_path / "b", 5, show_progress=False)  # same input, same bytes
    digest = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
    assert [digest(p) for p in paths] == [digest(p) for p in again]


def test_corrupt_and_truncated_shards_are_logged_counted_and_skipped(
    tmp_path: Path, utterances, caplog: pytest.LogCaptureFixture
) -> None:
    good_a, cut, garbage, good_b = write_shards(utterances, tmp_path, 4, show_progress=False)
    raw = Path(cut).read_bytes()
    padded = lambda n: -(-n // 512) * 512  # tar members: a 512-byte header, data padded to 512
    first = 512 + padded(len(Path(utterances[4].path or "").read_bytes())) + 512 + padded(len(utterances[4].text or ""))
    Path(cut).write_bytes(raw[: first + 512 + 100])  # cut inside the 2nd utterance's audio
    Path(garbage).write_bytes(b"not a tar file at all" * 100)
    stats = ShardStats()
    with caplog.at_level(logging.WARNING, logger="hf_w2v2.data.shards"):
        items = list(read_tar_shards([good_a, cut, garbage, good_b], stats))
    assert _names(items) == [u.id for u in utterances[:5]] + [u.id for u in utterances[12:]]
    assert [(Path(p).name, n) for p, n, _ in stats.bad_shards] == [(Path(cut).name, 1), (Path(garbage).name, 0)]
    assert stats.items == 9 and stats.shards == 4
    assert f"{cut}: corrupt or truncated after 1 item" in caplog.text
    assert f"{garbage}: corrupt or truncated after 0 item" in caplog.text


def test_json_transcripts_and_members_without_audio(tmp_path: Path, utterances) -> None:
    path = tmp_path / "hand.tar"
    audio = Path(utterances[0].path or "").read_bytes()
    with tarfile.open(path, "w") as tar:
        for name, data in [
            ("x/one.flac", audio),
            ("x/one.json", json.dumps({"transcript": "HELLO"}).encode()),
            ("x/lonely.txt", b"NO AUDIO HERE"),
            ("x/two.seg.wav", Path(AUDIO / "tone_8k.wav").read_bytes()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stats = ShardStats()
    items = list(read_tar_shard(str(path), stats))
    assert [(i["name"].rsplit(":", 1)[1], i["text"]) for i in items] == [("x/one", "HELLO"), ("x/two", None)]
    assert stats.incomplete[0][0].endswith("x/lonely") and "no audio" in stats.incomplete[0][1]


def test_jsonl_parquet_and_audiofolder_sources(tmp_path: Path, utterances) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"audio": u.path, "text": u.text} for u in utterances[:6]]
    rows[1] = {"audio": {"bytes": base64.b64encode(Path(utterances[1].path or "").read_bytes()).decode()}, "text": "B"}
    (tmp_path / "m.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{broken\n", encoding="utf-8")
    cells = [{"bytes": Path(u.path or "").read_bytes(), "path": Path(u.path or "").name} for u in utterances[:5]]
    table = pa.table({"audio": cells, "text": [u.text for u in utterances[:5]]})
    pq.write_table(table, tmp_path / "p.parquet")
    for source, count in [(tmp_path / "m.jsonl", 6), (tmp_path / "p.parquet", 5), (TRAIN, 16)]:
        shards = find_shards(str(source))
        stats = ShardStats()
        items = [item for shard in shards for item in read_shard(shard, stats)]
        assert len(items) == stats.items == count, source
        assert all(item["audio_bytes"] or Path(item["path"]).is_file() for item in items)
    assert len(find_shards(str(TRAIN))) == min(ROW_SHARDS, 16)  # an audiofolder: one row per shard here
    assert len(find_shards(str(tmp_path / "*.jsonl"))) == 1
    assert shard_texts(find_shards(str(tmp_path / "p.parquet"))) == [u.text for u in utterances[:5]]
    with pytest.raises(ValueError, match="not found"):
        find_shards(str(tmp_path / "missing"))


def test_stream_items_equal_the_eager_dataset_and_filters_are_counted(tmp_path: Path, processor) -> None:
    no_k = build_processor_from_texts(GEOMETRY, [LETTERS.replace("K", "")], tmp_path)
    """The fixture audio folder through a stream and through prepare_ctc_dataset: same items, same drops."""
    utts = read_audiofolder(AUDIO)  # 3 usable, 2 unreadable, 1 empty transcript
    eager, report = prepare_ctc_dataset(utts, processor, GEOMETRY, num_workers=1, show_progress=False)
    shards = find_all_shards([str(AUDIO)])
    decoder = CTCDecoder(processor, GEOMETRY, CTCFilter())
    one_pass = StreamReading(seed=0, shuffle_buffer=1, repeat=False)
    items = list(stream_dataset(shards, decoder, one_pass))
    assert sorted(items[0]) == ["input_length", "input_values", "labels", "name"]
    streamed = {item["name"]: item for item in items}
    assert sorted(streamed) == sorted(eager["name"])
    for row in eager:
        np.testing.assert_array_equal(streamed[row["name"]]["input_values"], row["input_values"])
        assert list(streamed[row["name"]]["labels"]) == list(row["labels"])
    seen = decoder.passes.report
    assert seen.kept == report.kept == 3 and seen.total == 6
    assert len(seen.unreadable) == 2 and len(seen.empty_transcript) == 1 and seen.oov_chars == report.oov_chars
    strict_filter = CTCFilter(max_duration=0.6, drop_oov=True)
    strict, _ = prepare_ctc_dataset(utts, no_k, GEOMETRY, strict_filter, show_progress=False)
    filters = CTCDecoder(no_k, GEOMETRY, strict_filter)
    kept = [item["name"] for item in stream_dataset(shards, filters, one_pass)]
    assert kept == list(strict["name"]) == [str(AUDIO / "tone_48k_stereo.flac")]
    assert filters.passes.report.too_long == [str(AUDIO / "speech_16k.flac")]  # 1.1 s
    oov = sorted(Path(name).name for name in filters.passes.report.dropped_oov)
    assert oov == ["corrupt.flac", "tone_8k.wav"]  # "okay", "broken": no K in this vocabulary


def test_ranks_and_workers_split_the_shards_and_cover_every_item_once_per_pass(
    tmp_path: Path, utterances, processor
) -> None:
    shards = find_all_shards([str(TRAIN)])  # 16 one-row shards
    seen: Counter[str] = Counter()
    for rank in range(2):
        dataset = ctc_stream(
            shards, processor, GEOMETRY, reading=StreamReading(seed=3, shuffle_buffer=4, repeat=False, streams=4)
        )
        part = dataset.shard(num_shards=2, index=rank)  # what accelerate does with dispatch_batches=False
        loader = torch.utils.data.DataLoader(
            part, batch_size=2, num_workers=2, collate_fn=lambda b: [i["name"] for i in b]
        )
        seen.update(name for batch in loader for name in batch)
    assert seen == Counter(u.name for u in utterances)  # every item exactly once over 2 ranks x 2 workers
    forever = ctc_stream(shards, processor, GEOMETRY, reading=StreamReading(seed=3, shuffle_buffer=1))
    first_two_passes = Counter(i["name"] for i in itertools.islice(iter(forever), 32))
    assert set(first_two_passes.values()) == {2}  # the stream repeats: no rank runs dry
    orders = [
        [
            i["name"]
            for i in itertools.islice(
                iter(ctc_stream(shards, processor, GEOMETRY, reading=StreamReading(seed=s, shuffle_buffer=8))), 16
            )
        ]
        for s in (3, 3, 4)
    ]
    assert orders[0] == orders[1] != orders[2]  # a function of the seed


def test_a_stream_of_only_bad_shards_fails_instead_of_spinning(tmp_path: Path, processor) -> None:
    (tmp_path / "bad.tar").write_bytes(b"\0garbage" * 64)
    with pytest.raises(RuntimeError, match="no item could be read"):
        next(
            iter(
                ctc_stream(
                    find_all_shards([str(tmp_path)]), processor, GEOMETRY, reading=StreamReading(shuffle_buffer=1)
                )
            )
        )


def test_pretraining_crops_are_seeded_by_pass_and_name(utterances) -> None:
    item = {"name": "a", "audio_bytes": Path(utterances[0].path or "").read_bytes(), "path": None, "text": None}
    decode = CropDecoder(min_seconds=0.5, max_seconds=0.5, seed=0)
    first, again = decode({**item, "pass": 0}), decode({**item, "pass": 0})
    assert first["keep"] and first["input_values"].shape == (8000,)
    np.testing.assert_array_equal(first["input_values"], again["input_values"])
    later = [decode({**item, "pass": p})["input_values"] for p in range(1, 4)]
    assert any(not np.array_equal(first["input_values"], crop) for crop in later)
    assert not CropDecoder(min_seconds=10.0, max_seconds=None, seed=0)({**item, "pass": 0})["keep"]


def test_streaming_needs_max_steps_and_reads_its_own_shards(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs --max_steps > 0"):
        check_stream_args(TrainingArguments(str(tmp_path), report_to="none"))
    args = configure_streaming(
        TrainingArguments(str(tmp_path), max_steps=5, train_sampling_strategy="group_by_length", report_to="none")
    )
    assert args.accelerator_config.dispatch_batches is False and args.train_sampling_strategy == "random"
    with pytest.raises(ValueError, match="max_batch_seconds needs every clip's length"):
        check_stream_args(args, max_batch_seconds=60.0)


def test_make_shards_command_and_too_few_shards_for_the_readers(tmp_path: Path, processor, capsys) -> None:
    from hf_w2v2.cli import main

    assert main(["make-shards", str(TRAIN), str(tmp_path / "s"), "--per_shard", "5", "--quiet"]) == 0
    assert "wrote 16 utterances in 4 shard(s)" in capsys.readouterr().out
    shards = find_all_shards([str(tmp_path / "s")])
    assert [s["kind"] for s in shards] == ["tar"] * 4 and len(shard_texts(shards)) == 16
    with pytest.raises(ValueError, match="4 shard\\(s\\) for 8 readers"):
        ctc_stream(shards, processor, GEOMETRY, reading=StreamReading(streams=8))  # 2 ranks x 4 workers
    assert main(["make-shards", str(tmp_path / "missing"), str(tmp_path / "t"), "--quiet"]) == 2
    pretrain = FIXTURES / "pretrain"
    assert main(["make-shards", str(pretrain), str(tmp_path / "u"), "--unlabeled", "--per_shard", "3", "--quiet"]) == 0
    unlabeled = list(read_tar_shards(sorted(map(str, (tmp_path / "u").glob("*.tar")))))
    assert len(unlabeled) == 8 and all(item["text"] is None for item in unlabeled)  # audio only, even broken.flac


def test_both_trainers_refuse_a_stream_without_max_steps_before_reading_data(tmp_path: Path) -> None:
    from hf_w2v2.finetune import parse_finetune_args, run_finetuning
    from hf_w2v2.pretrain.arguments import parse_pretrain_args
    from hf_w2v2.pretrain.run import run_pretraining

    missing = str(tmp_path / "no-such-corpus")  # never read: the check comes first
    common = ["--config_name", "tiny", "--output_dir", str(tmp_path / "out"), "--train_loading", "stream"]
    common += ["--report_to", "none", "--use_cpu", "True"]
    with pytest.raises(ValueError, match="needs --max_steps > 0"):
        run_finetuning(*parse_finetune_args([*common, "--train_data", missing, "--do_train"]))
    with pytest.raises(ValueError, match="needs --max_steps > 0"):
        run_pretraining(*parse_pretrain_args([*common, "--train_source", missing]))


def test_a_stream_whose_items_are_all_filtered_out_fails_and_a_big_buffer_does_not(processor, monkeypatch) -> None:
    shards = find_all_shards([str(TRAIN)])
    big_buffer = ctc_stream(
        shards, processor, GEOMETRY, reading=StreamReading(shuffle_buffer=1000)
    )  # ~60 passes of 16 clips buffered
    assert next(iter(big_buffer))["input_length"] > 0  # the first item may come from pass 40: no false alarm
    monkeypatch.setattr("hf_w2v2.data.stream.EMPTY_ITEMS", 40)
    all_too_long = ctc_stream(shards, processor, GEOMETRY, CTCFilter(max_duration=0.1), StreamReading(shuffle_buffer=4))
    with pytest.raises(RuntimeError, match="none of the first 40 items read is usable"):
        next(iter(all_too_long))
