"""What the first use of each inference path costs: building it (export, quantisation, compilation)
plus its first call, then building it again from the files it left in its folder, and ``auto``'s
whole first call (every path built, guarded and timed; what ``transcribe --precision auto`` waits for
once per machine and model).

    PYTHONPATH=. python bench/bench_path_build.py [--paths ...] [--model models/w2v2-small-synth-en]
                                                  [--dev ../shared/data/synth-dev] [--skip-base]

Base config (random weights; unguarded) and the shipped model (guarded on the transcripts), 10
calibration clips from synth-dev, a 10 s first call, 2 threads. "From files" rebuilds in this process:
what torch or OpenVINO keep in memory between the two builds (compiled kernels) makes it a lower bound
for a new process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from transformers import Wav2Vec2Processor

from hf_w2v2.data.audio import load_audio, normalize_waveform
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.inference.machine import cpu_info, speed_flags, speed_settings
from hf_w2v2.inference.measurement import describe
from hf_w2v2.inference.optimize import optimize
from hf_w2v2.inference.paths import CPU_PATHS, build_path
from hf_w2v2.models.configuration import Wav2Vec2Config
from hf_w2v2.models.ctc import Wav2Vec2ForCTC

CALIBRATION_CLIPS = 10
PROBE_SECONDS = 10


def dev_clips(dev: str, count: int) -> tuple[list[np.ndarray], list[str]]:
    """The first ``count`` clips of the audiofolder ``dev``, normalised, and their transcripts."""
    utterances = read_audiofolder(dev)[:count]
    clips = [normalize_waveform(np.asarray(load_audio(u.path, 16_000))).astype(np.float32) for u in utterances]
    return clips, [u.text or "" for u in utterances]


def time_builds(
    model: torch.nn.Module, clips: list[np.ndarray], probe: torch.Tensor, names: list[str], folder: str
) -> list[str]:
    rows = []
    for name in names:
        path_folder = os.path.join(folder, name)
        os.makedirs(path_folder)
        try:
            start = time.perf_counter()
            build_path(name, model, clips, path_folder)(probe, None)
            first = time.perf_counter() - start
            start = time.perf_counter()
            build_path(name, model, clips, path_folder)(probe, None)
            again = time.perf_counter() - start
        except Exception as err:  # a path this machine lacks is reported, the others still run
            rows.append(f"| {name} | not built: {type(err).__name__}: {str(err)[:120]} | |")
        else:
            rows.append(f"| {name} | {first:.1f} | {again:.1f} |")
        print(rows[-1], flush=True)
    return rows


def time_auto(
    model: torch.nn.Module, clips: list[np.ndarray], probe: torch.Tensor, references, bound: float, folder: str
) -> str:
    start = time.perf_counter()
    fast = optimize(model, "auto", clips, cache=folder, max_cer_change=bound, references=references)
    fast(probe)
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = optimize(model, "auto", clips, cache=folder, max_cer_change=bound, references=references)
    again(probe)
    cached = time.perf_counter() - start
    assert fast.choice is not None
    return (
        f"auto: first call {first:.1f} s (chose {fast.chosen}), from the cached ranking {cached:.1f} s; "
        f"{describe(fast.choice)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    built = [n for n in CPU_PATHS if n != "fp32" and not n.startswith("fp32-")]  # fp32 builds nothing
    parser.add_argument("--paths", nargs="+", default=built)
    parser.add_argument("--model", default="models/w2v2-small-synth-en")
    parser.add_argument("--dev", default="../shared/data/synth-dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--skip-auto", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = cpu_info()
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in speed_flags(info["flags"]).items())
    print(f"CPU: {info['model']}; {flags}; {speed_settings()}; threads {args.threads}; load {os.getloadavg()}")
    clips, texts = dev_clips(args.dev, CALIBRATION_CLIPS)
    probe = torch.as_tensor(np.concatenate(clips)[: PROBE_SECONDS * 16_000])[None]  # the first call: (1, T)
    models = []
    if not args.skip_base:
        torch.manual_seed(0)
        models.append(("base (random weights)", Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=32)).eval(), None, np.inf))
    if args.model:
        tokenizer = Wav2Vec2Processor.from_pretrained(args.model).tokenizer
        references = [tokenizer(t).input_ids for t in texts]
        models.append((args.model, Wav2Vec2ForCTC.from_pretrained(args.model).eval(), references, 0.005))
    for label, model, references, bound in models:
        print(f"\n{label}\n\n| path | build + first call, s | again from its files, s |\n|---|---|---|", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            time_builds(model, clips, probe, args.paths, os.path.join(tmp, "paths"))
            if not args.skip_auto:
                print(time_auto(model, clips, probe, references, bound, os.path.join(tmp, "auto")), flush=True)
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
