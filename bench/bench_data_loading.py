"""Time loading a labelled corpus into Trainer-ready CTC features.

Usage (from the repository root):
    python bench/bench_data_loading.py                      # ../shared/data/synth-train
    python bench/bench_data_loading.py --data DIR --workers 1 2

Reports, for each thread count: reading the source (metadata + file checks), building the
vocabulary/processor, decoding + resampling + normalising + tokenising into a
``datasets.Dataset``; then the cost of one pass over the dataset through the collator
(batches of 8), which is what the Trainer's DataLoader pays per epoch.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

START = time.perf_counter()

from transformers import Wav2Vec2Config  # noqa: E402

from hf_w2v2.data import DataCollatorCTCWithPadding, prepare_ctc_dataset, read_source  # noqa: E402
from hf_w2v2.data.processor import build_processor_from_texts  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/synth-train", help="audiofolder / LibriSpeech / manifest")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1], help="decoding thread counts to time")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    imported = time.perf_counter()
    print(f"imports: {imported - START:.2f} s")

    for workers in args.workers:
        t0 = time.perf_counter()
        utterances = read_source(args.data)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            processor = build_processor_from_texts(Wav2Vec2Config(), [u.text for u in utterances], out)
        t2 = time.perf_counter()
        dataset, report = prepare_ctc_dataset(utterances, processor, Wav2Vec2Config(), num_workers=workers)
        t3 = time.perf_counter()
        print(
            f"workers={workers}: read source {t1 - t0:.2f} s, vocab+processor {t2 - t1:.2f} s, "
            f"decode+features {t3 - t2:.2f} s; TOTAL {t3 - t0:.2f} s for {report.kept} utterances, "
            f"{report.kept_seconds / 3600:.2f} h ({report.kept_seconds / (t3 - t0):.0f}x real time)"
        )

    collator = DataCollatorCTCWithPadding.from_processor(processor)
    t4 = time.perf_counter()
    for start in range(0, len(dataset), 8):
        collator([dataset[i] for i in range(start, min(start + 8, len(dataset)))])
    t5 = time.perf_counter()
    print(f"one epoch through the collator (batch 8): {t5 - t4:.2f} s")
    print(f"process wall time: {t5 - START:.2f} s")


if __name__ == "__main__":
    main()
