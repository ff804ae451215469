"""Peak resident memory of ``hf-w2v2 transcribe`` for 200 and for 600 clips (issue 35: flat in the file count).

    python bench/transcribe_memory.py --model models/w2v2-small-synth-en --batch-size 8

Clips are cut from the fine-tuning fixture at lengths drawn uniformly in [0.5, 12] s (seed 0), so that
every batch frees blocks of another size (copies of one length hide the allocator's fragmentation).
Each count runs in a fresh process under ``/usr/bin/time -v`` (its "Maximum resident set size").
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

FIXTURE = Path(__file__).parent.parent / "tests" / "fixtures" / "finetune" / "train" / "audio"
RATE = 16_000  # Hz


def write_clips(folder: Path, count: int, seed: int = 0) -> None:
    audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in sorted(FIXTURE.glob("*.flac"))])
    rng = np.random.default_rng(seed)
    for i, seconds in enumerate(rng.uniform(0.5, 12.0, count)):
        start = int(rng.integers(0, len(audio)))
        sf.write(folder / f"v{i:04d}.flac", np.resize(np.roll(audio, -start), int(seconds * RATE)), RATE)


def peak_rss_mb(folder: Path, model: str, batch_size: int) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one transcription of ``folder``."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "hf_w2v2.cli", "transcribe", str(folder)]
    command += ["--model", model, "--no-lm", "--quiet", "--batch-size", str(batch_size), "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    assert rss and wall, done.stderr[-2000:]
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    return int(rss.group(1)) / 1000, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/w2v2-small-synth-en")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 600])
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as scratch:
        results = {}
        for count in args.counts:
            folder = Path(scratch) / str(count)
            folder.mkdir()
            write_clips(folder, count)
            results[count] = peak_rss_mb(folder, args.model, args.batch_size)
            print(f"{count} clips: peak RSS {results[count][0]:.0f} MB, {results[count][1]:.1f} s", flush=True)
    first, last = args.counts[0], args.counts[-1]
    print(f"ratio {last}/{first} clips: {results[last][0] / results[first][0]:.2f}x")


if __name__ == "__main__":
    main()
