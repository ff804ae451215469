"""Why long-form audio scores worse than the same speech clip by clip (issue 23.8).

Usage (from the repository root):
    python bench/long_audio.py                       # models/w2v2-small-synth-en on ../shared/data/synth-dev
    python bench/long_audio.py --minutes 10 --chunk-s 20

Builds one long recording by concatenating synth-dev clips (cycling through them until
``--minutes``) and scores greedy CTC transcripts (CER/WER of the joined references) under:

* clip by clip: each clip normalised and run alone (what the dev CER measures);
* long, normalised over the whole file (what ``hf-w2v2 transcribe`` does), unchunked and chunked;
* long, each clip normalised on its own before concatenation (training-time levels), unchunked and chunked;
* long, whole-file normalisation, cut at the true clip boundaries (same samples as above, no long context);
* long with ``--gap-s`` of silence between clips, per-clip normalisation, chunked.

Results and the conclusion are in docs/long_audio.md.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from hf_w2v2.data.audio import load_audio, normalize_waveform
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import error_rates


def load_clips(data: Path, minutes: float) -> tuple[list[np.ndarray], list[str]]:
    with (data / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    clips, texts, total = [], [], 0.0
    while total < minutes * 60:
        for row in rows:
            audio = load_audio(data / row["file_name"])
            clips.append(audio)
            texts.append(row["text"])
            total += audio.shape[0] / 16_000
            if total >= minutes * 60:
                break
    return clips, texts


def transcript(transcriber: Transcriber, normalised: np.ndarray, chunk: int | None) -> str:
    """Greedy transcript of already-normalised samples (``Transcriber.logits`` would normalise again)."""
    from hf_w2v2.inference.chunked import chunked_logits

    stride = 0 if chunk is None else transcriber.stride
    logits = chunked_logits(transcriber.model, torch.from_numpy(normalised), chunk, stride, stride)
    return transcriber.decode([logits])[0].text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/w2v2-small-synth-en")
    parser.add_argument("--data", default="../shared/data/synth-dev")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-s", type=float, default=20.0)
    parser.add_argument("--gap-s", type=float, default=0.5)
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="*",
        default=[],
        help="only: per-clip normalisation + gaps at these chunk lengths (s)",
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    transcriber = Transcriber.from_pretrained(args.model, use_lm=False, device="cpu", chunk_s=args.chunk_s)
    chunk = transcriber.chunk
    clips, texts = load_clips(Path(args.data), args.minutes)
    reference = " ".join(texts)
    seconds = sum(c.shape[0] for c in clips) / 16_000
    levels = np.array([np.sqrt(np.mean(c**2)) for c in clips])
    print(
        f"{len(clips)} clips, {seconds / 60:.1f} min; clip RMS min/median/max {levels.min():.3f}/"
        f"{np.median(levels):.3f}/{levels.max():.3f}; chunk {args.chunk_s} s"
    )

    def score(name: str, hypothesis: str | list[str], start: float) -> None:
        refs, hyps = (texts, hypothesis) if isinstance(hypothesis, list) else ([reference], [hypothesis])
        rates = error_rates(refs, hyps)
        print(f"{name:<58} CER {rates['cer']:.3f}  WER {rates['wer']:.3f}  ({time.perf_counter() - start:.0f} s)")

    if args.sweep:
        gap = np.zeros(int(args.gap_s * 16_000), dtype=np.float32)
        gapped = np.concatenate([x for c in clips for x in (normalize_waveform(c), gap)])
        for chunk_s in args.sweep:
            swept = Transcriber(transcriber.model, transcriber.processor, device="cpu", chunk_s=chunk_s)
            start = time.perf_counter()
            name = f"long, per-clip normalisation + {args.gap_s:g} s gaps, chunked {chunk_s:g} s"
            score(name, transcript(swept, gapped, swept.chunk), start)
        return
    start = time.perf_counter()
    score(
        "clip by clip (each normalised alone)",
        [transcript(transcriber, normalize_waveform(c), None) for c in clips],
        start,
    )
    whole = normalize_waveform(np.concatenate(clips))
    for label, c in (("unchunked", None), (f"chunked {args.chunk_s:g} s", chunk)):
        start = time.perf_counter()
        score(f"long, whole-file normalisation, {label}", transcript(transcriber, whole, c), start)
    per_clip = np.concatenate([normalize_waveform(c) for c in clips])
    for label, c in (("unchunked", None), (f"chunked {args.chunk_s:g} s", chunk)):
        start = time.perf_counter()
        score(f"long, per-clip normalisation, {label}", transcript(transcriber, per_clip, c), start)
    start = time.perf_counter()
    bounds = np.cumsum([0] + [c.shape[0] for c in clips])
    cut = [transcript(transcriber, whole[a:b], None) for a, b in zip(bounds[:-1], bounds[1:])]
    score("long, whole-file normalisation, cut at clip boundaries", cut, start)
    gap = np.zeros(int(args.gap_s * 16_000), dtype=np.float32)
    gapped = np.concatenate([x for c in clips for x in (normalize_waveform(c), gap)])
    start = time.perf_counter()
    score(
        f"long, per-clip normalisation + {args.gap_s:g} s gaps, chunked", transcript(transcriber, gapped, chunk), start
    )


if __name__ == "__main__":
    main()
