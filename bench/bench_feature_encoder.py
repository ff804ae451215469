"""Feature-encoder compute paths on this machine, interleaved in one process, as ratios.

    python bench/bench_feature_encoder.py [--config small|base] [--repeats 5]

Training (forward + backward, frames-major): convolutions as one matmul over frame windows
(``conv_as_matmul``, with its hand-written window backward) vs ``nn.Conv1d`` on transposed views,
in fp32 and under bf16 autocast. Inference (no grad): channels-major ``nn.Conv1d`` vs the frames-major
matmul path, fp32 and bf16 autocast (the channels-major stack was removed from the package: it
lost). A second path stays in the code only where it wins by >= 1.2x (issue 20); the ratios printed
here are the ones quoted in hf_w2v2/models/feature_encoder.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from hf_w2v2.models.configuration import base, small
from hf_w2v2.models.feature_encoder import FeatureEncoder


def channels_major(encoder: FeatureEncoder, audio: torch.Tensor) -> torch.Tensor:
    """The removed inference path, kept here as the reference: ``nn.Conv1d`` on (B, C, F) tensors."""
    x = audio[:, None, :]  # (B, T) -> (B, 1, T)
    for block in encoder.conv_layers:
        x = block.conv(x)  # (B, C_in, F_in) -> (B, C, F_out)
        if block.norm == "group":
            x = block.layer_norm(x)
        elif block.norm == "layer":
            x = block.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        x = block.activation(x)
    return x


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("small", "base"), default="small")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = (small if args.config == "small" else base)(feat_extract_norm="layer", conv_bias=True)
    torch.manual_seed(0)
    encoder = FeatureEncoder(config)
    train_audio = torch.randn(8, 4 * 16000)  # 8 clips of 4 s
    infer_audio = torch.randn(1, 10 * 16000)  # one 10 s clip

    def train(kernel: str, dtype: torch.dtype | None) -> Callable[[], object]:
        def step() -> object:
            encoder.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                out = encoder(train_audio, kernel=kernel)
            out.float().pow(2).mean().backward()
            return out

        return step

    def infer(layout: str, dtype: torch.dtype | None) -> Callable[[], object]:
        def run() -> object:
            with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                if layout == "channels":
                    return channels_major(encoder, infer_audio)
                return encoder(infer_audio, kernel="matmul")

        return run

    cases = {
        "train fp32": (train("matmul", None), train("conv1d", None)),
        "train bf16": (train("matmul", torch.bfloat16), train("conv1d", torch.bfloat16)),
        "infer fp32": (infer("channels", None), infer("frames", None)),
        "infer bf16": (infer("channels", torch.bfloat16), infer("frames", torch.bfloat16)),
    }
    print(f"{args.config} encoder, {torch.get_num_threads()} threads; best of {args.repeats}, interleaved")
    print("case         | path A                 | path B               |   A ms |   B ms | B/A")
    names = {
        "train": ("matmul windows", "nn.Conv1d frames"),
        "infer": ("nn.Conv1d channels", "matmul frames"),
    }
    for case, (a, b) in cases.items():
        a(), b()  # warm-up
        ta, tb = [], []
        for _ in range(args.repeats):  # interleaved so that load changes hit both alike
            ta.append(best_of(a, 1))
            tb.append(best_of(b, 1))
        first, second = names[case.split()[0]]
        ms = f"{1e3 * min(ta):6.1f} | {1e3 * min(tb):6.1f}"
        print(f"{case:12s} | {first:22s} | {second:20s} | {ms} | {min(tb) / min(ta):.2f}x")


if __name__ == "__main__":
    main()
