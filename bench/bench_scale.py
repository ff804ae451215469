"""Issue 24 item 5: memory of fine-tuning does not grow with the corpus, and data never starves a step.

Usage (from the repository root; ~10 minutes on 2 cores):
    python bench/bench_scale.py                                  # synth-train (1.5 h) and 10x it (15 h)
    python bench/bench_scale.py --loadings lazy stream eager --repeat 10 --steps 6

1. Peak memory: a short CTC fine-tuning run (``examples/finetune_ctc.py``, small preset, batches of
   ``--batch_seconds`` (stream: 8 clips), 2 DataLoader workers) on the corpus and on a manifest
   repeating it ``--repeat`` times, per loading mode. Memory is the peak over the run of the summed
   PSS (proportional set size: pages shared by the forked workers are counted once) of the whole
   process tree, sampled every 0.2 s.
2. Data-only throughput: audio-seconds per second that 2 DataLoader workers decode, resample,
   normalise and collate (lazy dataset, batches by seconds), against the model's training
   throughput (audio-seconds per second of the fine-tuning steps, from the run's
   ``train_audio_seconds_per_second``). The issue asks for at least 20x.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from hf_w2v2.data.sources import read_audiofolder

ROOT = Path(__file__).resolve().parents[1]


def repeated_manifest(source: str, times: int, out: Path) -> Path:
    """A ``file_name,text`` manifest of ``source`` (an audiofolder) repeated ``times`` times, absolute paths."""
    rows = read_audiofolder(source)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "text"])
        for _ in range(times):
            writer.writerows([str(Path(str(u.path)).resolve()), u.text] for u in rows)
    return out


def tree_pss(process: psutil.Process) -> int:
    """Summed proportional set size of ``process`` and its children (bytes)."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # a worker that just ended
            total += proc.memory_full_info().pss
    return total


def finetune_peak(train: str, loading: str, out: Path, args: argparse.Namespace) -> tuple[float, dict]:
    """(peak GiB, train metrics) of a short fine-tuning run."""
    command = [
        sys.executable, "examples/finetune_ctc.py",
        "--config_name", "small", "--train_data", train, "--output_dir", str(out),
        "--do_train", "--max_steps", str(args.steps), "--learning_rate", "1e-4",
        "--train_loading", loading,
        "--dataloader_num_workers", "2", "--save_strategy", "no", "--eval_strategy", "no",
        "--report_to", "none", "--disable_tqdm", "True", "--use_cpu", "True", "--logging_steps", "1",
        "--max_duration", "12",
    ]  # fmt: skip
    # A stream has no lengths up front, so no batches by seconds: a fixed batch of about the same audio.
    command += (
        ["--per_device_train_batch_size", "8"]
        if loading == "stream"
        else ["--max_batch_seconds", str(args.batch_seconds)]
    )
    log = out.with_suffix(".log")
    with log.open("w") as handle:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        watched, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            peak = max(peak, tree_pss(watched))
            time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"fine-tuning failed ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    metrics = json.loads((out / "train_results.json").read_text())
    return peak / 2**30, metrics


def data_throughput(train: str, seconds: float, batch_seconds: float) -> float:
    """Audio-seconds per second decoded and collated by 2 DataLoader workers (lazy data, batches by seconds)."""
    import torch
    from transformers import Wav2Vec2Config

    from hf_w2v2.data.collator import DataCollatorCTCWithPadding
    from hf_w2v2.data.ctc_filter import CTCFilter
    from hf_w2v2.data.lazy import prepare_lazy_ctc_dataset
    from hf_w2v2.data.processor import build_processor_from_texts
    from hf_w2v2.data.sampler import DurationBatchSampler
    from hf_w2v2.data.sources import read_source

    utts = read_source(train)
    assert isinstance(utts, list)
    config = Wav2Vec2Config(feat_extract_norm="layer")  # the collator then returns the attention mask we count
    with tempfile.TemporaryDirectory() as scratch:
        processor = build_processor_from_texts(config, [u.text or "" for u in utts[:2000]], scratch)
    dataset, _ = prepare_lazy_ctc_dataset(utts, processor, config, CTCFilter(max_duration=12.0), show_progress=False)
    sampler = DurationBatchSampler(dataset.lengths, int(batch_seconds * 16_000))
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=2, collate_fn=DataCollatorCTCWithPadding.from_processor(processor)
    )
    audio, start = 0.0, None
    for batch in loader:
        if start is None:  # workers started and the first batches queued: time the steady state
            start = time.perf_counter()
            continue
        audio += float(batch["attention_mask"].sum()) / 16_000
        if time.perf_counter() - start > seconds:
            break
    assert start is not None
    return audio / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/synth-train", help="an audiofolder")
    parser.add_argument("--repeat", type=int, default=10, help="the larger corpus is the data this many times")
    parser.add_argument("--loadings", nargs="+", default=["lazy"], help="train_loading modes to measure")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps of each fine-tuning run")
    parser.add_argument("--batch_seconds", type=float, default=60.0, help="--max_batch_seconds of the runs")
    parser.add_argument("--throughput_seconds", type=float, default=60.0, help="how long to time the data loader")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as scratch:
        big = str(repeated_manifest(args.data, args.repeat, Path(scratch) / "repeated.csv"))
        small = str(repeated_manifest(args.data, 1, Path(scratch) / "once.csv"))
        rows, train_speed = [], None
        for loading in args.loadings:
            for name, corpus in (("1x", small), (f"{args.repeat}x", big)):
                peak, metrics = finetune_peak(corpus, loading, Path(scratch) / f"{loading}-{name}", args)
                train_speed = train_speed or metrics.get("train_audio_seconds_per_second")
                rows.append((loading, name, peak, metrics.get("train_runtime", float("nan"))))
                print(f"{loading:6s} {name:4s} peak {peak:.2f} GiB, run {rows[-1][3]:.0f} s", flush=True)
        data_speed = data_throughput(big, args.throughput_seconds, args.batch_seconds)
    print("\n| loading | corpus | peak memory (GiB, PSS of the process tree) | ratio to 1x |")
    print("|---|---|---:|---:|")
    for loading, name, peak, _ in rows:
        base = next(p for lo, n, p, _ in rows if lo == loading and n == "1x")
        print(f"| {loading} | {name} | {peak:.2f} | {peak / base:.3f} |")
    print(f"\ndata only (2 workers, lazy): {data_speed:.0f} audio-s/s")
    if train_speed:
        ratio = data_speed / train_speed
        print(f"training (small preset, fp32): {train_speed:.1f} audio-s/s -> data/training = {ratio:.0f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
