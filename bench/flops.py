"""FLOPs per second of audio of the model presets, and measured training throughput on this machine.

    OMP_NUM_THREADS=1 python bench/flops.py                       # counts for small/base/large_lv60, timing small+base
    python bench/flops.py --presets base --time base --steps 3    # one preset
    python bench/flops.py --no-time                               # counts only (seconds)

Counts (``torch.utils.flop_counter.FlopCounterMode``: matmuls, convolutions and attention, a
multiply-add = 2 FLOPs; norms, activations and the optimizer are not counted; two corrections to
torch's table, see ``CORRECTIONS``: CPU flash attention counted, grouped-conv backward not 16x) on one clip of
``--seconds`` seconds (default 10 s, the paper's fine-tuning crops are up to ~15 s):

- ``fwd``: inference forward of the CTC model (``eval``, 32 output letters);
- ``ft``: one CTC fine-tuning step, forward + backward with the feature encoder frozen (the paper's
  and our recipes' fine-tuning: no weight gradients in the conv stack, no input gradients below it);
- ``pt``: one pre-training step of ``Wav2Vec2ForPreTraining``, forward + backward of everything,
  the paper's masking (p = 0.65, M = 10) and K = 100 negatives, drawn by the model.

Throughput: ``--steps`` timed fine-tuning steps (forward, backward, AdamW) after one warm-up, fp32,
one process, a batch of ``--batch`` clips of ``--clip`` seconds; audio seconds per wall second and the
FLOP rate that implies (``ft`` FLOPs / step time). Results and the command go to
bench/results_flops.md by hand (the machine's load matters: say ``uptime``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from hf_w2v2 import Wav2Vec2ForCTC, Wav2Vec2ForPreTraining
from hf_w2v2.models.configuration import config_from_name

RATE = 16_000  # samples per second
VOCAB = 32  # letters + apostrophe + space + blank/pad/unk: a LibriSpeech CTC head
PRETRAIN_FIELDS = dict(mask_time_prob=0.65, mask_time_length=10, mask_time_min_masks=2, num_negatives=100)


def _cpu_attention(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_attention_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _conv_backward(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding,
                   groups, output_mask, *args, **kwargs) -> int:  # fmt: skip
    """Input and weight gradients each cost one forward; ``w_shape`` holds in-channels per group, so this is
    right for grouped convolutions (torch's formula ignores ``groups`` and counts the positional conv's
    backward 16x too high: 80 instead of 9.4 GFLOPs for 10 s through ``base``)."""
    forward = flop_counter.conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


ATEN = torch.ops.aten
CORRECTIONS = {
    ATEN._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,  # not in torch's table: eval attention on CPU
    ATEN._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
    ATEN.convolution_backward: _conv_backward,
}


def count(fn) -> int:
    with FlopCounterMode(display=False, custom_mapping=CORRECTIONS) as counter:
        fn()
    return int(counter.get_total_flops())


def ctc_model(preset: str) -> Wav2Vec2ForCTC:
    return Wav2Vec2ForCTC(config_from_name(preset, vocab_size=VOCAB, layerdrop=0.0))


def labels_for(audio: torch.Tensor) -> torch.Tensor:
    """~15 characters per second of audio (LibriSpeech's rate), random letters."""
    length = max(1, int(audio.shape[1] / RATE * 15))
    return torch.randint(1, VOCAB, (audio.shape[0], length), generator=torch.Generator().manual_seed(0))


def flops_per_audio_second(preset: str, seconds: float) -> dict[str, float]:
    torch.manual_seed(0)
    audio = torch.randn(1, int(seconds * RATE))
    model = ctc_model(preset).eval()
    with torch.no_grad():
        fwd = count(lambda: model(audio))
    model.train()
    model.freeze_feature_encoder()
    labels = labels_for(audio)
    ft = count(lambda: model(audio, labels=labels).loss.backward())
    pre = Wav2Vec2ForPreTraining(config_from_name(preset, layerdrop=0.0, **PRETRAIN_FIELDS)).train()
    pt = count(lambda: pre(audio).loss.backward())
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "fwd": fwd / seconds, "ft": ft / seconds, "pt": pt / seconds}


def throughput(preset: str, batch: int, clip: float, steps: int) -> tuple[float, float]:
    """(audio seconds per second, seconds per step): median of ``steps`` fine-tuning steps after a warm-up."""
    torch.manual_seed(0)
    model = ctc_model(preset).train()
    model.freeze_feature_encoder()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    audio = torch.randn(batch, int(clip * RATE))
    labels = labels_for(audio)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model(audio, labels=labels).loss.backward()
        optimizer.step()
        if step:  # the first step is a warm-up (allocations, kernel choice)
            times.append(time.perf_counter() - start)
    per_step = statistics.median(times)
    return batch * clip / per_step, per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "base", "large_lv60"])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length for the FLOP counts")
    parser.add_argument("--time", nargs="*", default=["small", "base"], help="presets to time (none: --no-time)")
    parser.add_argument("--no-time", action="store_true")
    parser.add_argument("--batch", type=int, default=2, help="clips per timed step")
    parser.add_argument("--clip", type=float, default=4.0, help="seconds per timed clip")
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); FLOPs on one {args.seconds:g} s clip")
    print("| preset | parameters | GFLOPs / audio-s forward | fine-tuning step (frozen conv) | pre-training step |")
    print("|---|---|---|---|---|")
    counts = {}
    for preset in args.presets:
        c = counts[preset] = flops_per_audio_second(preset, args.seconds)
        print(
            f"| {preset} | {c['params'] / 1e6:.1f} M | {c['fwd'] / 1e9:.1f} | {c['ft'] / 1e9:.1f} "
            f"({c['ft'] / c['fwd']:.2f} x fwd) | {c['pt'] / 1e9:.1f} ({c['pt'] / c['fwd']:.2f} x fwd) |"
        )
    if args.no_time or not args.time:
        return
    print(f"\nfine-tuning steps, fp32, batch {args.batch} x {args.clip:g} s, median of {args.steps} after a warm-up")
    print("| preset | s / step | audio-s / s | achieved GFLOP/s (fine-tuning FLOPs / time) |")
    print("|---|---|---|---|")
    for preset in args.time:
        rate, per_step = throughput(preset, args.batch, args.clip, args.steps)
        c = counts.get(preset) or flops_per_audio_second(preset, args.seconds)
        print(f"| {preset} | {per_step:.2f} | {rate:.2f} | {rate * c['ft'] / 1e9:.1f} |")


if __name__ == "__main__":
    main()
