"""Inference paths vs stock transformers fp32: speed ratios and accuracy, one table.

    PYTHONPATH=. python bench/bench_inference.py [--seconds 1 10 30] [--batches 1 8] [--repeats 5] [--threads 2]
                                    [--model models/w2v2-small-synth-en] [--dev ../shared/data/synth-dev]
                                    [--paths ...] [--clips N]

Part 1, speed: the base config (random weights, same weights in every path) and the shipped
CTC model, for each clip length and batch size. Every path runs in this process, interleaved
(one call of each per round), best of ``--repeats``; the ratio is stock fp32 time / path time
(> 1 is faster). ``max|dlogit|`` (base: last hidden state) is against stock fp32 on the same input.

Part 2, accuracy and throughput of the shipped model on synth-dev: greedy CER/WER per precision,
and files per second of ``Transcriber`` at batch size 1 and 8 (fp32).

Paths: stock-fp32, stock-int8 (``quantize_dynamic`` on Linear), fp32, bf16 (autocast; also where
only emulated), int8 (:func:`hf_w2v2.inference.precision.quantize_int8`), onnx (onnxruntime, fp32), onnx-int8
(:func:`hf_w2v2.inference.export.quantize_onnx`, onnxruntime).
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import tempfile
import time

import numpy as np
import torch
import transformers

import hf_w2v2
from hf_w2v2.data.audio import load_audio
from hf_w2v2.inference.export import OnnxRunner, export_onnx, quantize_onnx
from hf_w2v2.inference.precision import quantize_int8
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import char_error_rate, word_error_rate

ALL_PATHS = ("stock-fp32", "stock-int8", "fp32", "bf16", "int8", "onnx", "onnx-int8")


def build_paths(stock: torch.nn.Module, ours: torch.nn.Module, names: list[str], tmp: str, ctc: bool) -> dict:
    """name -> callable(audio (B, T)) -> (B, F, V) logits or (B, F, D) hidden states."""
    pick = (lambda out: out.logits) if ctc else (lambda out: out.last_hidden_state)
    stock_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(stock), {torch.nn.Linear}, dtype=torch.qint8)
    ours_int8 = quantize_int8(ours)
    paths = {
        "stock-fp32": lambda a: pick(stock(a)),
        "stock-int8": lambda a: pick(stock_int8(a)),
        "fp32": lambda a: pick(ours(a)),
        "int8": lambda a: pick(ours_int8(a)),
    }

    def bf16(a):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return pick(ours(a)).float()

    paths["bf16"] = bf16
    if ctc and ("onnx" in names or "onnx-int8" in names):
        fp32_file = export_onnx(ours, os.path.join(tmp, "m.onnx"))
        for name, file in (("onnx", fp32_file), ("onnx-int8", quantize_onnx(fp32_file, os.path.join(tmp, "q.onnx")))):
            runner = OnnxRunner(file, threads=torch.get_num_threads())
            paths[name] = lambda a, run=runner: torch.from_numpy(run(a, np.ones(a.shape, dtype=np.int64)))
    return {n: paths[n] for n in names if n in paths}


def time_paths(paths: dict, audio: torch.Tensor, repeats: int) -> tuple[dict, dict]:
    """Best-of-``repeats`` seconds per path, interleaved, and max |path - stock fp32|."""
    with torch.inference_mode():
        ref = paths["stock-fp32"](audio)
        diffs = {n: float((fn(audio) - ref).abs().max()) for n, fn in paths.items()}  # also the warm-up
        best = dict.fromkeys(paths, float("inf"))
        for _ in range(repeats):
            for name, fn in paths.items():
                start = time.perf_counter()
                fn(audio)
                best[name] = min(best[name], time.perf_counter() - start)
    return best, diffs


def speed_table(args: argparse.Namespace, tmp: str) -> list[str]:
    rows = ["| model | clip | batch | path | best ms | vs stock fp32 | max abs diff |", "|---|---|---|---|---|---|---|"]
    torch.manual_seed(0)
    setups = []
    if not args.skip_base:
        # the base config with a 32-letter CTC head (random weights), so that every path, ONNX too, applies
        stock = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(vocab_size=32, attn_implementation="sdpa"))
        ours = hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(vocab_size=32)).eval()
        ours.load_state_dict(stock.state_dict())
        setups.append(("base", stock.eval(), ours, True))
    if args.model:
        stock = transformers.Wav2Vec2ForCTC.from_pretrained(args.model, attn_implementation="sdpa").eval()
        ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(args.model).eval()
        setups.append((os.path.basename(args.model.rstrip("/")), stock, ours, True))
    for label, stock, ours, ctc in setups:
        paths = build_paths(stock, ours, args.paths, tmp, ctc)
        for seconds in args.seconds:
            for batch in args.batches:
                audio = torch.randn(batch, int(16_000 * seconds))
                best, diffs = time_paths(paths, audio, args.repeats)
                for name in paths:
                    ratio = best["stock-fp32"] / best[name]
                    rows.append(
                        f"| {label} | {seconds:g} s | {batch} | {name} | {1000 * best[name]:.0f} | "
                        f"{ratio:.2f}x | {diffs[name]:.1e} |"
                    )
                print("\n".join(rows[-len(paths) :]), flush=True)
    return rows


def accuracy_table(args: argparse.Namespace) -> list[str]:
    with open(os.path.join(args.dev, "metadata.csv"), encoding="utf-8") as f:
        items = list(csv.DictReader(f))[: args.clips or None]
    files = [os.path.join(args.dev, r["file_name"]) for r in items]
    refs = [r["text"] for r in items]
    rows = ["| precision | batch | CER | WER | files/s | max abs logit diff vs fp32 |", "|---|---|---|---|---|---|"]
    reference = None
    audio = [load_audio(p) for p in files]
    for precision, batch in args.accuracy_runs:
        onnx = precision.startswith("onnx")
        transcriber = Transcriber.from_pretrained(
            args.model, use_lm=False, device="cpu", precision="fp32" if onnx else precision, batch_size=batch
        )
        if precision == "bf16" and transcriber.precision != "bf16":  # measure it even where emulated
            transcriber.bf16, transcriber.precision = True, "bf16"
        if onnx:
            with tempfile.TemporaryDirectory() as tmp:
                file = export_onnx(transcriber.model, os.path.join(tmp, "m.onnx"))
                file = quantize_onnx(file, os.path.join(tmp, "q.onnx")) if precision == "onnx-int8" else file
                runner = OnnxRunner(file, threads=torch.get_num_threads())
            start = time.perf_counter()  # one clip per call (batch 1), normalised as the Transcriber does
            clips = [transcriber._normalize(a)[None] for a in audio]  # (1, T) each
            logits = [torch.from_numpy(runner(c, np.ones(c.shape, np.int64))[0]) for c in clips]
        else:
            start = time.perf_counter()
            logits = transcriber.logits_batch(audio)
        hyps = [t.text for t in transcriber.decode(logits)]
        elapsed = time.perf_counter() - start
        if reference is None:
            reference = logits
        diff = max(float((a - b).abs().max()) for a, b in zip(logits, reference))
        rows.append(
            f"| {precision} | {batch} | {char_error_rate(refs, hyps):.4f} | {word_error_rate(refs, hyps):.4f} | "
            f"{len(files) / elapsed:.2f} | {diff:.1e} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0, 30.0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", nargs="+", default=list(ALL_PATHS), choices=ALL_PATHS)
    parser.add_argument("--model", default="models/w2v2-small-synth-en")
    parser.add_argument("--dev", default="../shared/data/synth-dev")
    parser.add_argument("--clips", type=int, default=0, help="first N synth-dev clips (0: all)")
    parser.add_argument("--skip-base", action="store_true", help="only the shipped model")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    args.accuracy_runs = [
        ("fp32", 1),
        ("fp32", 8),
        ("int8", 1),
        ("int8", 8),
        ("bf16", 8),
        ("onnx", 1),
        ("onnx-int8", 1),
    ]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}")
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        speed = [] if args.skip_speed else speed_table(args, tmp)
    accuracy = [] if args.skip_accuracy else accuracy_table(args)
    print(f"\nload average at end: {os.getloadavg()}\n")
    print("\n".join(speed + [""] + accuracy))


if __name__ == "__main__":
    main()
