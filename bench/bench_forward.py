"""Forward time of a 10 s clip, base config, ours vs stock transformers (sdpa), same weights, same process.

    python bench/bench_forward.py [--seconds 10] [--repeats 10] [--threads N]

Prints the best (least disturbed) wall time and CPU time (``time.process_time``, all threads) of each,
the ratios stock / ours (>= 1.0 means ours is not slower) and the median of the per-round wall ratios.
Both models run in eval mode under torch.inference_mode, interleaved so that machine load hits
both alike. Ours times its conv and linear kernels on its first call (``--verbose`` logs the choices).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch
import transformers

import hf_w2v2


def _time(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (16 kHz)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of each model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--verbose", action="store_true", help="log the kernels ours measured and chose")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    stock = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(attn_implementation="sdpa"))
    ours = hf_w2v2.Wav2Vec2Model(hf_w2v2.Wav2Vec2Config())
    ours.load_state_dict(stock.state_dict())
    stock.eval().to(args.device)
    ours.eval().to(args.device)
    audio = torch.randn(1, int(16000 * args.seconds), device=args.device)

    def run(model):
        with torch.inference_mode():
            model(audio)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        diff = (ours(audio).last_hidden_state - stock(audio).last_hidden_state).abs().max().item()
    for _ in range(2):  # warm-up
        run(stock), run(ours)
    stock_times, our_times = [], []
    for _ in range(args.repeats):
        stock_times.append(_time(lambda: run(stock)))
        our_times.append(_time(lambda: run(ours)))
    s, o = min(t[0] for t in stock_times), min(t[0] for t in our_times)
    s_cpu, o_cpu = min(t[1] for t in stock_times), min(t[1] for t in our_times)
    paired = statistics.median(a[0] / b[0] for a, b in zip(stock_times, our_times))
    print(f"device={args.device} threads={torch.get_num_threads()} clip={args.seconds:.0f}s base config")
    print(f"max |ours - stock| = {diff:.2e}")
    best = f"ms ({args.repeats} runs, best)"
    print(f"stock transformers {transformers.__version__} (sdpa): {s * 1000:.1f} ms, CPU {s_cpu * 1000:.1f} {best}")
    print(f"hf_w2v2:                                 {o * 1000:.1f} ms, CPU {o_cpu * 1000:.1f} {best}")
    print(f"speed ratio stock/ours: {s / o:.3f}x (CPU time {s_cpu / o_cpu:.3f}x, median of rounds {paired:.3f}x)")


if __name__ == "__main__":
    main()
