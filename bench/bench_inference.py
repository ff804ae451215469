"""Every inference path vs stock transformers fp32 and vs the peer routes: speed ratios and accuracy.

    PYTHONPATH=. python bench/bench_inference.py --quick [--peer-site DIR] [--dev DIR]      # < 5 min, quiet machine
    PYTHONPATH=. python bench/bench_inference.py [--seconds 1 10 30] [--batches 1 8] [--repeats 5] [--threads 2]
                                    [--model models/w2v2-small-synth-en] [--dev ../shared/data/synth-dev]
                                    [--paths ...] [--clips N] [--peer-site DIR] [--skip-base]

Prints the CPU model and its speed flags (avx2, avx512_vnni, avx512_bf16, amx), threads and load.

Part 1, speed: the base config (random weights, the same in every path) and the shipped CTC model,
for each clip length and batch size. Every path runs in this process, interleaved (one call of
each per round, each after a pause while the last one's backend threads stop spinning:
``measurement.SETTLE_SECONDS``), best of ``--repeats``; the ratio is stock fp32 time / path time (> 1 is faster).
``max|dlogit|`` is against stock fp32 on the same input. Two timings per path: at one recurring
length (the clip again and again, as long audio's full windows and a stream's partial windows
are), and at new lengths (each round a length no path has met, as file after file is: a path that builds
kernels per input shape pays for it there), scaled to the clip's length. ``auto`` runs each on its own
ranking. Each row has its own runner (``auto``'s are its own too), and its own new lengths: kernels are
shared within a process (torch paths share oneDNN's cache; two OpenVINO graphs with the same layer shapes,
ours and the peer's, share OpenVINO's), so with one new length per round for all rows, a later row ran on
kernels an earlier one had built for it (until 2026-12-07: the peers, last, read faster than alone). The
new lengths are cuts of the clip, 331 samples apart (one more frame each), while the shortest keeps 80% of
it; for short clips (1 s) they are longer inputs, and the scaling per sample is rougher there.

Paths: ``stock-fp32``, ``stock-int8`` (``quantize_dynamic`` on Linear); ours: every path of
:mod:`hf_w2v2.inference.paths` (fp32 per conv kernel, bf16, torch int8, onnxruntime fp32 / dynamic /
static int8, OpenVINO int8, PT2E static int8 with torchao) and ``auto``
(:func:`hf_w2v2.inference.optimize`, calibrated and guarded on ``--calibration-clips`` synth-dev clips
and their transcripts; the base model's random weights make the guard meaningless, so base's auto
runs unguarded); peers (with ``--peer-site``, see ``bench/peer_export.py``):
``peer-ort-fp32`` / ``peer-ort-int8`` (optimum-onnx export + optimum's dynamic int8 preset for this
CPU) and ``peer-ov-fp32`` / ``peer-ov-int8`` (optimum-intel OpenVINO export, NNCF static int8 on the
same calibration clips).

Part 2, the shipped model on synth-dev: greedy CER/WER of every path (one clip per call), and files
per second of ``Transcriber`` (fp32 and ``auto``) at batch size 1 and 8, with and without the length
grid, interleaved batch by batch.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
import transformers
from transformers import Wav2Vec2Processor

import hf_w2v2
from hf_w2v2.data.audio import load_audio, normalize_waveform
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.inference.batching import length_sorted_batches
from hf_w2v2.inference.machine import CACHE_ENV, cpu_info, library_versions, speed_flags, speed_settings
from hf_w2v2.inference.measurement import SETTLE_SECONDS, describe
from hf_w2v2.inference.openvino_int8 import check_isa_limit, compile_config
from hf_w2v2.inference.optimize import FastModel, optimize
from hf_w2v2.inference.paths import CPU_PATHS, build_path, on_grid, uses_grid
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import char_error_rate, word_error_rate

Runner = Callable[[torch.Tensor], torch.Tensor]  # audio (B, T) -> logits (B, F, V)
PEERS = ("peer-ort-fp32", "peer-ort-int8", "peer-ov-fp32", "peer-ov-int8")
ALL_PATHS = ("stock-fp32", "stock-int8", *CPU_PATHS, "auto", *PEERS)


def session_runner(path: str, threads: int) -> Runner:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(audio: torch.Tensor) -> torch.Tensor:
        feeds = {"input_values": audio.numpy(), "attention_mask": np.ones(audio.shape, np.int64)}
        return torch.from_numpy(session.run(None, {n: feeds[n] for n in names})[0])

    return run


def openvino_runner(xml: str, threads: int, clips: list[np.ndarray] | None) -> Runner:
    import openvino as ov

    graph = ov.Core().read_model(xml)
    names = [i.get_any_name() for i in graph.inputs]
    if clips:
        import nncf

        feeds = [
            {n: (c[None] if n == "input_values" else np.ones((1, len(c)), np.int64)) for n in names} for c in clips
        ]
        graph = nncf.quantize(graph, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(clips))
    compiled = ov.Core().compile_model(graph, "CPU", compile_config(threads))

    def run(audio: torch.Tensor) -> torch.Tensor:
        feeds = {"input_values": audio.numpy(), "attention_mask": np.ones(audio.shape, np.int64)}
        return torch.from_numpy(np.asarray(compiled({n: feeds[n] for n in names})[0]))

    return run


def peer_runners(
    stock: torch.nn.Module, stock_dir: str, args: argparse.Namespace, clips: list[np.ndarray], tmp: str
) -> dict[str, Runner]:
    """The optimum routes, exported in a subprocess under ``--peer-site`` (optimum pins transformers 4)."""
    if not args.peer_site:
        return {}
    out = os.path.join(tmp, "peer-" + os.path.basename(stock_dir.rstrip("/")))
    env = {**os.environ, "PYTHONPATH": args.peer_site}
    script = os.path.join(os.path.dirname(__file__), "peer_export.py")
    done = subprocess.run([sys.executable, script, stock_dir, out], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"peer export failed, peers left out:\n{done.stderr[-2000:]}", flush=True)
        return {}
    threads = torch.get_num_threads()
    ort = {
        "peer-ort-fp32": session_runner(os.path.join(out, "ort", "model.onnx"), threads),
        "peer-ort-int8": session_runner(os.path.join(out, "ort-int8", "model_quantized.onnx"), threads),
    }
    try:
        check_isa_limit(stock)  # the peer runs the same OpenVINO
    except RuntimeError as err:
        print(f"OpenVINO peers left out: {err}", flush=True)
        return ort
    return {
        **ort,
        "peer-ov-fp32": openvino_runner(os.path.join(out, "ov", "openvino_model.xml"), threads, None),
        "peer-ov-int8": openvino_runner(os.path.join(out, "ov", "openvino_model.xml"), threads, clips),
    }


def build_paths(
    stock: torch.nn.Module, ours: torch.nn.Module, stock_dir: str, clips: list[np.ndarray], guarded: bool, args, tmp
) -> tuple[dict[str, Runner], str]:
    """name -> runner for every path in ``args.paths`` that builds here, and auto's choice."""
    names = args.paths
    paths: dict[str, Runner] = {"stock-fp32": lambda a: stock(a).logits}
    if "stock-int8" in names:
        stock_int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(stock), {torch.nn.Linear}, dtype=torch.qint8)
        paths["stock-int8"] = lambda a: stock_int8(a).logits
    # auto first: it builds, guards and times every path of ours; the table reuses what it built
    references = None
    if guarded and args.calibration_texts:  # the guard as issue 33 defines it: CER against the transcripts
        tokenizer = Wav2Vec2Processor.from_pretrained(stock_dir).tokenizer
        references = [tokenizer(text).input_ids for text in args.calibration_texts]
    bound = 0.005 if guarded else float("inf")
    fast = optimize(ours, "auto", clips, cache=args.cache, max_cer_change=bound, references=references)
    fast(torch.as_tensor(np.concatenate(clips)[: 10 * 16_000])[None])  # timed on 10 s, as the targets are
    assert fast.choice is not None
    guard = "guarded" if guarded else "unguarded: random weights"
    choice = f"{fast.chosen} at new lengths, {fast.chosen_recurring} at recurring ones ({guard}); "
    choice += describe(fast.choice)
    if "auto" in names:  # right after stock fp32, the row the others are compared with
        paths = {"stock-fp32": paths.pop("stock-fp32"), "auto": lambda a: fast(a).logits, **paths}
    errors = {r.name: r.error for r in fast.choice.results}
    for name in CPU_PATHS:
        if name not in names:
            continue
        try:  # its own runner, from the files auto cached: a shape one has met is not met by the other
            run = build_path(name, ours, clips, fast._artifacts())
            run = on_grid(run, ours) if fast.length_grid and uses_grid(ours, name) else run
            paths[name] = lambda a, run=run: run(a, None)
        except Exception as err:  # a path this machine lacks is reported, the others still run
            print(f"{name}: not built ({errors.get(name) or f'{type(err).__name__}: {err}'})", flush=True)
    if any(n in names for n in PEERS):
        paths.update({n: r for n, r in peer_runners(stock, stock_dir, args, clips, tmp).items() if n in names})
    return paths, choice


# Samples between two new lengths: over one hop (320), so that the number of frames changes too (OpenVINO
# reuses most kernels for a length of the same frame count: 7 samples at a time, its per-shape cost showed
# only once). Every path gets its own lengths, each round: paths x --repeats x 331 samples in all.
NEW_LENGTH_STEP = 331
MAX_NEW_LENGTH_CUT = 0.2  # new lengths are cuts of the clip while the shortest keeps 80% of it, else longer clips


def new_lengths(samples: int, paths: int, repeats: int) -> list[list[int]]:
    """``[round][path]`` input lengths, all different, none equal to ``samples``: shorter cuts of the
    clip where the shortest keeps at least 1 - :data:`MAX_NEW_LENGTH_CUT` of it, else longer inputs."""
    steps = [[NEW_LENGTH_STEP * (1 + r * paths + i) for i in range(paths)] for r in range(repeats)]
    sign = -1 if NEW_LENGTH_STEP * paths * repeats <= MAX_NEW_LENGTH_CUT * samples else 1
    return [[samples + sign * step for step in row] for row in steps]


def time_paths(paths: dict[str, Runner], audio: torch.Tensor, repeats: int) -> tuple[dict, dict, dict]:
    """Best-of-``repeats`` seconds per path, interleaved, at ``audio``'s length (recurring) and at a new
    length every round (each path its own, so that no path runs on kernels another one built for that
    length; the time is scaled to ``audio``'s length); and max |path - stock fp32|."""
    with torch.inference_mode():
        ref = paths["stock-fp32"](audio)
        diffs = {n: float((fn(audio) - ref).abs().max()) for n, fn in paths.items()}  # also the warm-up
        best = dict.fromkeys(paths, float("inf"))
        new = dict.fromkeys(paths, float("inf"))
        longer = torch.randn(audio.shape[0], audio.shape[1] + NEW_LENGTH_STEP * len(paths) * repeats)
        for lengths in new_lengths(audio.shape[1], len(paths), repeats):
            for (name, fn), length in zip(paths.items(), lengths):
                cut = audio[:, :length] if length < audio.shape[1] else longer[:, :length]  # a length no path has met
                time.sleep(SETTLE_SECONDS)  # the last path's backend threads stop spinning first
                start = time.perf_counter()
                fn(audio)
                best[name] = min(best[name], time.perf_counter() - start)
                time.sleep(SETTLE_SECONDS)
                start = time.perf_counter()
                fn(cut)
                new[name] = min(new[name], (time.perf_counter() - start) * audio.shape[1] / length)
    return best, new, diffs


def dev_items(args: argparse.Namespace) -> tuple[list[np.ndarray], list[str]]:
    """Raw synth-dev clips and their texts (``--clips`` first ones; none without ``--dev``)."""
    if not args.dev or not os.path.isfile(os.path.join(args.dev, "metadata.csv")):
        return [], []
    items = read_audiofolder(args.dev)[: args.clips or None]
    return [load_audio(str(u.path)) for u in items], [str(u.text) for u in items]


def speed_table(args: argparse.Namespace, calibration: list[np.ndarray], tmp: str) -> tuple[list[str], dict]:
    rows = [
        "| model | clip | batch | path | best ms | vs stock fp32 | new lengths: ms | vs stock fp32 | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    setups = []
    if not args.skip_base:
        torch.manual_seed(0)  # base config, 32-letter CTC head, random weights shared by stock and ours
        norm = args.base_norm
        config = transformers.Wav2Vec2Config(vocab_size=32, attn_implementation="sdpa", feat_extract_norm=norm)
        stock = transformers.Wav2Vec2ForCTC(config)
        base_dir = os.path.join(tmp, "base")
        stock.save_pretrained(base_dir)
        ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(base_dir).eval()
        label = "base" if args.base_norm == "group" else f"base ({args.base_norm}-norm encoder)"
        setups.append((label, stock.eval(), ours, base_dir, False))
    if args.model:
        stock = transformers.Wav2Vec2ForCTC.from_pretrained(args.model, attn_implementation="sdpa").eval()
        ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(args.model).eval()
        setups.append((os.path.basename(args.model.rstrip("/")), stock, ours, args.model, True))
    runners = {}
    for label, stock, ours, folder, guarded in setups:
        paths, choice = build_paths(stock, ours, folder, calibration, guarded, args, tmp)
        print(f"{label}: auto chose {choice}", flush=True)
        if guarded:  # the shipped model's paths are reused for the accuracy part
            runners[label] = (paths, choice)
        for seconds in args.seconds:
            for batch in args.batches:
                audio = torch.randn(batch, int(16_000 * seconds))
                best, new, diffs = time_paths(paths, audio, args.repeats)
                for name in paths:
                    ratio, new_ratio = best["stock-fp32"] / best[name], new["stock-fp32"] / new[name]
                    rows.append(
                        f"| {label} | {seconds:g} s | {batch} | {name} | {1000 * best[name]:.0f} | {ratio:.2f}x | "
                        f"{1000 * new[name]:.0f} | {new_ratio:.2f}x | {diffs[name]:.1e} |"
                    )
                print("\n".join(rows[-len(paths) :]), flush=True)
    return rows, runners


def accuracy_table(args: argparse.Namespace, audio: list[np.ndarray], refs: list[str], runners: dict) -> list[str]:
    """Greedy CER/WER of each path on the shipped model, one clip per call, and Transcriber files/s."""
    transcriber = Transcriber.from_pretrained(args.model, use_lm=False, device="cpu")
    clips = [torch.as_tensor(transcriber._normalize(a))[None] for a in audio]  # (1, T) each
    label = os.path.basename(args.model.rstrip("/"))
    paths, choice = runners.get(label, ({}, "-"))
    rows = [f"| path | CER | WER | clips/s (batch 1) |  (auto chose {choice})", "|---|---|---|---|"]
    for name, run in paths.items():
        start = time.perf_counter()
        with torch.inference_mode():
            logits = [run(c)[0] for c in clips]
        elapsed = time.perf_counter() - start
        hyps = [t.text for t in transcriber.decode(logits)]
        cer, wer = char_error_rate(refs, hyps), word_error_rate(refs, hyps)
        rows.append(f"| {name} | {cer:.4f} | {wer:.4f} | {len(clips) / elapsed:.2f} |")
        print(rows[-1], flush=True)
    return rows + [""] + batch_rows(args, audio, refs)


def batch_rows(args: argparse.Namespace, audio: list[np.ndarray], refs: list[str]) -> list[str]:
    """Files/s of ``Transcriber`` at batch size 1 and 8 (logits + greedy decode, audio in memory), with
    the length grid and without it (``length_grid=False``: every input at its own length).

    Issue 33: batch 8 should give >= 2x the files/s of batch 1. The four run interleaved batch by batch:
    for each batch of 8 similar-length clips that batch size 8 forms over all clips, each transcribes
    those clips in turn (a rotating order), best of ``--repeats`` per batch, summed; a busy machine then
    slows all alike. "First pass" sums the first repeat alone: what transcribing the files once costs,
    each new input length building its oneDNN kernels (later passes may find them cached). ``auto``
    forgets the input shapes it has met before every pass, so each pass meets the files as new ones
    (its ranking for new lengths), not as recurring ones.
    """
    rows = [
        "| Transcriber precision | batch | length grid | files/s | first pass files/s | vs batch 1, no grid | CER |",
        "|---|---|---|---|---|---|---|",
    ]
    batches = length_sorted_batches([len(a) for a in audio], 8)
    settings = [(1, False), (1, True), (8, False), (8, True)]  # (batch size, length grid)
    for precision in ("fp32", "auto"):
        runs = {
            (size, grid): Transcriber.from_pretrained(
                args.model, use_lm=False, device="cpu", precision=precision, batch_size=size, length_grid=grid
            )
            for size, grid in settings
        }
        if precision == "auto":  # the choice is made (and cached) before the clock starts
            for run_t in runs.values():
                run_t.model.set_calibration([run_t._normalize(a) for a in audio[:8]])
                run_t.model(torch.as_tensor(run_t._normalize(audio[0]))[None])
        best = {key: np.full(len(batches), np.inf) for key in runs}
        first = dict.fromkeys(runs, 0.0)
        texts: dict[tuple[int, bool], list[str]] = {key: [""] * len(audio) for key in runs}
        for repeat in range(args.repeats):
            for run_t in runs.values():
                if isinstance(run_t.model, FastModel):
                    run_t.model.seen.clear()
            for j, batch in enumerate(batches):
                turn = (j + repeat) % len(settings)
                for key in settings[turn:] + settings[:turn]:
                    start = time.perf_counter()
                    hyps = [t.text for t in runs[key].decode(runs[key].logits_batch([audio[i] for i in batch]))]
                    elapsed = time.perf_counter() - start
                    best[key][j] = min(best[key][j], elapsed)
                    first[key] += elapsed if repeat == 0 else 0.0
                    for i, text in zip(batch, hyps):
                        texts[key][i] = text
        seconds = {key: float(best[key].sum()) for key in runs}
        for (size, grid), run_t in runs.items():
            in_effect = "yes" if run_t.length_grid else "no"
            rows.append(
                f"| {precision} ({getattr(run_t.model, 'chosen', None) or precision}) | {size} | {in_effect} | "
                f"{len(audio) / seconds[size, grid]:.2f} | {len(audio) / first[size, grid]:.2f} | "
                f"{seconds[1, False] / seconds[size, grid]:.2f}x | {char_error_rate(refs, texts[size, grid]):.4f} |"
            )
            print(rows[-1], flush=True)
    return rows


def header(threads: int) -> str:
    info = cpu_info()
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in speed_flags(info["flags"]).items())
    amx = "yes" if any(f.startswith("amx") for f in info["flags"]) else "no"
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items() if v)
    settings = ", ".join(f"{k}={v}" for k, v in speed_settings().items())
    return (
        f"CPU: {info['model']} ({os.cpu_count()} logical CPUs); {flags}; amx {amx}\n"
        f"speed settings: {settings}\nthreads {threads}; load average {os.getloadavg()}\n{versions}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="10 s, batch 1, 3 repeats, 30 dev clips, 10 calibrating (< 5 min)"
    )
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0, 30.0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--base-norm",
        choices=("group", "layer"),
        default="group",
        help="base's feature-encoder norm; layer: the same sizes where OpenVINO cannot run GroupNorm (an ISA limit)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", nargs="+", default=list(ALL_PATHS), choices=ALL_PATHS)
    parser.add_argument("--model", default="models/w2v2-small-synth-en")
    parser.add_argument("--dev", default="../shared/data/synth-dev")
    parser.add_argument("--clips", type=int, default=0, help="first N synth-dev clips (0: all)")
    parser.add_argument("--calibration-clips", type=int, default=30, help="synth-dev clips calibrating int8")
    parser.add_argument("--peer-site", default=None, help="site folder with optimum (bench/peer_export.py)")
    parser.add_argument("--cache", default=None, help="optimize() cache folder (default: a fresh temporary one)")
    parser.add_argument("--skip-base", action="store_true", help="only the shipped model")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.batches, args.repeats, args.clips = [10.0], [1], 3, args.clips or 30
        args.calibration_clips = min(args.calibration_clips, 10)
    torch.set_num_threads(args.threads)
    print(header(torch.get_num_threads()), flush=True)
    audio, refs = dev_items(args)
    calibration = [normalize_waveform(a) for a in audio[: args.calibration_clips]]
    args.calibration_texts = refs[: args.calibration_clips]
    if not calibration:  # no synth-dev: noise calibrates (the accuracy part is skipped)
        generator = np.random.default_rng(0)
        calibration = [generator.standard_normal(48_000).astype(np.float32) for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        args.cache = args.cache or os.path.join(tmp, "optimize")
        os.environ[CACHE_ENV] = os.path.dirname(args.cache)  # the Transcriber's auto choice too
        speed, runners = ([], {}) if args.skip_speed else speed_table(args, calibration, tmp)
        accuracy = [] if args.skip_accuracy or not audio else accuracy_table(args, audio, refs, runners)
    print(f"\nload average at end: {os.getloadavg()}\n")
    print("\n".join(speed + [""] + accuracy))


if __name__ == "__main__":
    main()
