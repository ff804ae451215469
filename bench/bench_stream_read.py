"""Items per second read from tar shards, raw and decoded for CTC (hf_w2v2.data.shards / hf_w2v2.data.stream).

    PYTHONPATH=. python bench/bench_stream_read.py [--copies 50] [--per_shard 100] [--workers 2]

Writes the shipped 16-clip fixture corpus ``copies`` times into shards in a temporary folder, then
times one pass: the raw tar reader, and the decoded CTC stream (soundfile + soxr + normalise +
tokenise + filter) in this process (no DataLoader workers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from torch.utils.data import DataLoader

from hf_w2v2.data.processor import build_processor_from_texts
from hf_w2v2.data.shards import ShardStats, read_tar_shards, write_shards
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.data.stream import StreamReading, ctc_stream
from hf_w2v2.data.stream_sources import find_all_shards
from hf_w2v2.models.configuration import config_from_name

TRAIN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "finetune" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=50)
    parser.add_argument("--per_shard", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="also time a DataLoader with this many workers")
    args = parser.parse_args()
    base = read_audiofolder(TRAIN)
    utterances = [replace(u, id=f"{u.id}-{c}") for c in range(args.copies) for u in base]
    with tempfile.TemporaryDirectory() as folder:
        paths = write_shards(utterances, folder, args.per_shard, show_progress=False)
        megabytes = sum(Path(p).stat().st_size for p in paths) / 1e6
        start = time.perf_counter()
        stats = ShardStats()
        count = sum(1 for _ in read_tar_shards(paths, stats))
        raw = time.perf_counter() - start
        rate = f"{count / raw:.0f} items/s, {megabytes / raw:.0f} MB/s"
        print(f"raw: {count} items, {megabytes:.1f} MB, {len(paths)} shards: {rate}")
        config = config_from_name("tiny")
        processor = build_processor_from_texts(config, ["ABCDEFGHIJKLMNOPQRSTUVWXYZ' "], folder)
        stream = ctc_stream(
            find_all_shards([folder]), processor, config, reading=StreamReading(shuffle_buffer=100, repeat=False)
        )
        start = time.perf_counter()
        seconds = 0.0
        decoded = 0
        for item in stream:
            decoded += 1
            seconds += item["input_length"] / 16000
        elapsed = time.perf_counter() - start
        print(
            f"decoded CTC stream: {decoded} items, {seconds / 3600:.2f} h of audio in {elapsed:.1f} s: "
            f"{decoded / elapsed:.0f} items/s, {seconds / elapsed:.0f} audio s/s (one process)"
        )
        if args.workers:
            shards = find_all_shards([folder])
            stream = ctc_stream(
                shards, processor, config, reading=StreamReading(shuffle_buffer=100, repeat=False, streams=args.workers)
            )
            loader = DataLoader(stream, batch_size=8, num_workers=args.workers, collate_fn=len)
            start = time.perf_counter()
            count = sum(loader)
            elapsed = time.perf_counter() - start
            print(f"decoded, DataLoader with {args.workers} workers: {count} items, {count / elapsed:.0f} items/s")


if __name__ == "__main__":
    main()
