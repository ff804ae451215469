"""One pre-training step, ours vs stock transformers, in one process.

    python bench/bench_pretrain_step.py                 # base config; CUDA when available, else CPU
    python bench/bench_pretrain_step.py --steps 5 --dtype bf16
    python bench/bench_pretrain_step.py --config small --dtype bf16 --steps 5   # the shipped recipe's model

A step is what a Trainer does per batch: draw the time mask and the negatives,
forward, backward. ``base``: 4 clips of 10 s with the paper's masking (p = 0.65
per span start in transformers units, M = 10, K = 100); ``small``:
the ``small`` preset (its masking, K = 50) on 8 clips of
4 s, the batches of ``pretrain_small*.json``. Audio is synth-train's longest clips
when ``../shared/data`` is there, noise otherwise.

- ours: ``hf_w2v2.Wav2Vec2ForPreTraining`` draws masks and negatives itself,
  in torch, on the model's device.
- stock: transformers' ``Wav2Vec2ForPreTraining`` with the numpy
  ``_compute_mask_indices`` / ``_sample_negative_indices`` on the host, copied
  to the device (its documented recipe).

Both models hold the same weights. Prints the median step time of each and
the ratio stock / ours (> 1 means ours is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

from hf_w2v2 import Wav2Vec2Config, Wav2Vec2ForPreTraining
from hf_w2v2.models.configuration import base, small
from hf_w2v2.models.masking import compute_span_mask
from hf_w2v2.models.negatives import sample_negative_indices

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "synth-train"
RATE = 16_000  # samples per second
BATCHES = {"base": (4, 10.0), "small": (8, 4.0)}  # clips per batch, seconds per clip
PRETRAIN_FIELDS = dict(mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2, num_negatives=100)


def batch_audio(batch: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """(B, T) float32: the longest synth-train clips cropped to ``seconds``, or noise."""
    samples = int(seconds * RATE)
    try:
        import csv

        import soundfile as sf

        with open(DATA / "metadata.csv", encoding="utf-8") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda r: -float(r["duration"]))
        waves = [sf.read(DATA / r["file_name"], dtype="float32")[0][:samples] for r in rows[:batch]]
        waves = [np.pad(w, (0, samples - len(w))) for w in waves]
        return torch.from_numpy(np.stack(waves))
    except (OSError, KeyError, ValueError):
        return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


def ours_step(model: torch.nn.Module, audio: torch.Tensor, attention: torch.Tensor) -> None:
    out = model(audio, attention_mask=attention)
    out.loss.backward()


def stock_step(model: torch.nn.Module, audio: torch.Tensor, attention: torch.Tensor) -> None:
    cfg = model.config
    frames = int(model._get_feat_extract_output_lengths(audio.shape[1]))
    frame_attention = torch.ones(audio.shape[0], frames, dtype=torch.long)  # full-length clips
    mask = _compute_mask_indices(
        (audio.shape[0], frames), cfg.mask_time_prob, cfg.mask_time_length, frame_attention, cfg.mask_time_min_masks
    )
    negatives = _sample_negative_indices((audio.shape[0], frames), cfg.num_negatives, mask)
    mask = torch.tensor(mask, device=audio.device, dtype=torch.long)
    negatives = torch.tensor(negatives, device=audio.device, dtype=torch.long)
    out = model(audio, attention_mask=attention, mask_time_indices=mask, sampled_negative_indices=negatives)
    out.loss.backward()


def timed(step, model, audio, attention, device: torch.device, dtype: torch.dtype | None) -> float:
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        step(model, audio, attention)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def targets_only(config, batch: int, frames: int, device: torch.device, repeats: int = 20) -> tuple[float, float]:
    """Median seconds to draw mask + negatives for the batch: ours (torch, on device) vs numpy + copy."""
    lengths = torch.full((batch,), frames, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    frame_attention = torch.ones(batch, frames, dtype=torch.long)

    def ours() -> None:
        mask = compute_span_mask(
            (batch, frames),
            config.mask_time_prob,
            config.mask_time_length,
            min_masks=config.mask_time_min_masks,
            lengths=lengths,
            generator=generator,
        )
        sample_negative_indices(mask, config.num_negatives, generator=generator)

    def stock() -> None:
        mask = _compute_mask_indices(
            (batch, frames), config.mask_time_prob, config.mask_time_length, frame_attention, config.mask_time_min_masks
        )
        negatives = _sample_negative_indices((batch, frames), config.num_negatives, mask)
        torch.tensor(mask, device=device), torch.tensor(negatives, device=device)

    result = []
    for fn in (ours, stock):
        fn()
        runs = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            runs.append(time.perf_counter() - start)
        result.append(statistics.median(runs))
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model (default 10 on GPU, 2 on CPU)")
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast dtype")
    parser.add_argument("--config", choices=["base", "small"], default="base", help="model and batch (see above)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    steps = args.steps or (10 if device.type == "cuda" else 2)

    torch.manual_seed(0)
    if args.config == "small":
        fields = small().to_diff_dict()
        config = Wav2Vec2Config(**fields)
        stock_config = transformers.Wav2Vec2Config(**fields)
    else:
        config = base(**PRETRAIN_FIELDS)
        stock_config = transformers.Wav2Vec2Config(**{**base().to_dict(), **PRETRAIN_FIELDS})
    ours = Wav2Vec2ForPreTraining(config).to(device).train()
    stock = transformers.Wav2Vec2ForPreTraining(stock_config)
    missing, unexpected = stock.load_state_dict(ours.state_dict(), strict=False)
    if unexpected or [k for k in missing if "masked_spec_embed" not in k]:
        raise RuntimeError(f"weights do not map: missing {missing[:5]}, unexpected {unexpected[:5]}")
    stock = stock.to(device).train()
    batch, seconds = BATCHES[args.config]
    audio = batch_audio(batch, seconds).to(device)
    attention = torch.ones_like(audio, dtype=torch.long)

    times: dict[str, list[float]] = {"ours": [], "stock": []}
    for model, step in ((ours, ours_step), (stock, stock_step)):
        timed(step, model, audio, attention, device, dtype)  # warm-up
    for _ in range(steps):  # interleaved so that load changes hit both alike
        times["ours"].append(timed(ours_step, ours, audio, attention, device, dtype))
        times["stock"].append(timed(stock_step, stock, audio, attention, device, dtype))
    ours_s, stock_s = statistics.median(times["ours"]), statistics.median(times["stock"])
    frames = int(ours._get_feat_extract_output_lengths(audio.shape[1]))
    ours_t, stock_t = targets_only(config, batch, frames, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(
        f"device: {name}, {args.config} config, dtype {args.dtype}, "
        f"batch {batch} x {seconds:.0f} s, {steps} timed steps"
    )
    print(f"ours  (torch masks + negatives on device): {ours_s * 1000:8.1f} ms/step")
    print(f"stock (numpy masks + negatives on host):   {stock_s * 1000:8.1f} ms/step")
    print(f"ratio stock / ours: {stock_s / ours_s:.2f}x")
    print(
        f"masks + negatives alone ({batch} x {frames} frames, K={config.num_negatives}): "
        f"ours {ours_t * 1000:.2f} ms, stock {stock_t * 1000:.2f} ms, ratio {stock_t / ours_t:.2f}x"
    )


if __name__ == "__main__":
    main()
