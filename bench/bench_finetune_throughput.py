"""Training throughput (audio seconds per second) of CTC fine-tuning: hf_w2v2 vs stock transformers.

1. Same config, same batches: ``transformers.Wav2Vec2ForCTC`` and ``hf_w2v2.Wav2Vec2ForCTC``
   (identical weights) each run forward + backward + AdamW step on the same real batches
   from synth-train; steps alternate between the two models so that machine load (shared
   CPUs) hits both alike. Reported: audio-s/s of each and the ratio ours / stock.
2. Batch composition (our recipe): random batches vs ``group_by_length`` batches of the same
   size; "useful" audio-s/s counts real audio, not padding.
3. Frozen-feature cache (``--cache_frozen_features``): with the first 3, 4 (or all 7) conv blocks
   frozen, steps on audio batches vs steps on cached block outputs (collation timed in both),
   same length-grouped batches; reported: audio-s/s of each and the speed-up.

    python bench/bench_finetune_throughput.py --steps 12 --batch_size 8 [--bf16]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_w2v2 import Wav2Vec2Config, Wav2Vec2ForCTC
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.finetune.data import choose_processor, prepare_split
from hf_w2v2.models.configuration import small
from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.training.feature_cache import (
    PREFIX_KEY,
    CachedFeatureCollator,
    FrozenFeatureCache,
    PrefixCompute,
    attach_cache,
    use_cached_prefix,
)

ROOT = Path(__file__).resolve().parents[1]
RATE = 16_000  # samples per second


def small_config(vocab_size: int) -> dict:
    """The ``small`` preset as a CTC model (fine-tuning masking, mean CTC loss), as plain fields."""
    config = small(
        vocab_size=vocab_size, pad_token_id=0, mask_time_prob=0.05, mask_time_length=10, ctc_loss_reduction="mean"
    )
    return config.to_diff_dict()


def batches(dataset, batch_size: int, count: int, grouped: bool, seed: int) -> list[list[int]]:
    """Index lists: random batches, or batches of neighbours in length order (then shuffled)."""
    rng = random.Random(seed)
    order = list(range(len(dataset)))
    rng.shuffle(order)
    if grouped:
        lengths = dataset["input_length"]
        order.sort(key=lambda i: int(lengths[i]))
    chunks = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    rng.shuffle(chunks)
    return chunks[:count]


def step_time(model, optimizer, batch, bf16: bool) -> float:
    start = time.perf_counter()
    batch = dict(batch)
    with (
        use_cached_prefix(model, batch.pop(PREFIX_KEY, None)),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16),
    ):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    utts = read_audiofolder(Path(args.data) / "synth-train")[: args.max_utterances]
    normalizer = TextNormalizer()
    config = Wav2Vec2Config(**small_config(32))
    processor, _ = choose_processor(config, [u.text for u in utts], normalizer)
    split = prepare_split("train", utts, processor, config, CTCFilter(normalizer, max_duration=12.0))
    fields = small_config(len(processor.tokenizer))
    torch.manual_seed(0)
    ours = Wav2Vec2ForCTC(Wav2Vec2Config(**fields)).train()
    stock = transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**fields)).train()
    stock.load_state_dict(ours.state_dict())
    models = {"stock": stock, "ours": ours}
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    collate = DataCollatorCTCWithPadding.from_processor(processor)
    times = {k: 0.0 for k in models}
    audio = 0.0
    for i, idx in enumerate(batches(split.dataset, args.batch_size, args.steps + 1, False, 0)):
        batch = collate([split.dataset[j] for j in idx])
        for name in ("stock", "ours") if i % 2 else ("ours", "stock"):  # alternate who goes first
            seconds = step_time(models[name], optims[name], batch, args.bf16)
            if i > 0:  # step 0 warms up allocators
                times[name] += seconds
        audio += batch["input_values"].shape[0] * batch["input_values"].shape[1] / RATE if i > 0 else 0.0
    result = {f"{k}_audio_s_per_s": audio / t for k, t in times.items()}
    result["ratio_ours_over_stock"] = times["stock"] / times["ours"]
    useful = {}
    for grouped in (False, True):
        real = padded = spent = 0.0
        for idx in batches(split.dataset, args.batch_size, args.steps, grouped, 1):
            batch = collate([split.dataset[j] for j in idx])
            spent += step_time(ours, optims["ours"], batch, args.bf16)
            real += sum(int(split.dataset[j]["input_length"]) for j in idx) / RATE
            padded += batch["input_values"].numel() / RATE
        useful["group_by_length" if grouped else "random"] = {
            "useful_audio_s_per_s": real / spent,
            "padding_fraction": 1 - real / padded,
        }
    result["batch_composition_ours"] = useful
    result["frozen_feature_cache_ours"] = cache_speedups(fields, split.dataset, collate, args)
    result.update(steps=args.steps, batch_size=args.batch_size, bf16=args.bf16, threads=torch.get_num_threads())
    return result


def cache_speedups(fields: dict, dataset, collate: DataCollatorCTCWithPadding, args: argparse.Namespace) -> dict:
    """Section 3: audio vs cached-prefix steps for 3, 4 and 7 frozen conv blocks."""
    out = {}
    for frozen in (3, 4, 7):
        torch.manual_seed(0)
        model = Wav2Vec2ForCTC(Wav2Vec2Config(**fields)).train()
        model.freeze_feature_encoder(frozen)
        optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        cache = FrozenFeatureCache(num_layers=frozen)
        start = time.perf_counter()
        keyed = cache.add(
            model.wav2vec2.feature_extractor,
            dataset,
            compute=PrefixCompute(autocast_dtype=torch.bfloat16 if args.bf16 else None),
            show_progress=False,
        )
        cache_s = time.perf_counter() - start
        cached = CachedFeatureCollator(base=collate, cache=cache)
        attach_cache(model, frozen)
        spent = {"audio": 0.0, "cached": 0.0}
        real = 0.0
        for i, idx in enumerate(batches(dataset, args.batch_size, args.steps + 1, True, 2)):
            for name in ("audio", "cached") if i % 2 else ("cached", "audio"):
                start = time.perf_counter()
                batch = collate([dataset[j] for j in idx]) if name == "audio" else cached([keyed[j] for j in idx])
                seconds = time.perf_counter() - start + step_time(model, optim, batch, args.bf16)
                spent[name] += seconds if i > 0 else 0.0
            real += sum(int(dataset[j]["input_length"]) for j in idx) / RATE if i > 0 else 0.0
        out[f"first_{frozen}_blocks_frozen"] = {
            "audio_batches_audio_s_per_s": real / spent["audio"],
            "cached_audio_s_per_s": real / spent["cached"],
            "speedup": spent["audio"] / spent["cached"],
            "cache_seconds": cache_s,
            "cache_mb": cache.nbytes / 1e6,
            "cached_utterances": len(cache.features),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="folder holding synth-train")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model")
    parser.add_argument("--batch_size", type=int, default=8, help="utterances per batch")
    parser.add_argument("--max_utterances", type=int, default=400, help="utterances loaded from synth-train")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
