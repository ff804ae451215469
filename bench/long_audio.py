"""Why long-form audio scores worse than the same speech clip by clip (issue 23.8).

Usage (from the repository root):
    python bench/long_audio.py                       # models/w2v2-small-synth-en on ../shared/data/synth-dev
    python bench/long_audio.py --minutes 10 --chunk-s 20
    python bench/long_audio.py --segmented           # issue 34: cut at pauses vs windows vs clip by clip
    python bench/long_audio.py --segmented --fsdd ../shared/data/fsdd --clips 400 --gap-s 0.3
    python bench/long_audio.py --streamed            # issue 34: streamed finals vs offline, clip by clip
    python bench/long_audio.py --write-hour /tmp/hour  # /tmp/hour.flac + .txt: an hour to time hf-w2v2 align

Builds one long recording by concatenating synth-dev clips (cycling through them until
``--minutes``) and scores greedy CTC transcripts (CER/WER of the joined references) under:

* clip by clip: each clip normalised and run alone (what the dev CER measures);
* long, normalised over the whole file (what ``hf-w2v2 transcribe`` does), unchunked and chunked;
* long, each clip normalised on its own before concatenation (training-time levels), unchunked and chunked;
* long, whole-file normalisation, cut at the true clip boundaries (same samples as above, no long context);
* long with ``--gap-s`` of silence between clips, per-clip normalisation, chunked.

With ``--segmented`` (issue 34) it builds the recording as it would come from a microphone (raw clip
levels, ``--gap-s`` of silence between clips) and compares clip by clip, whole-file windows (the old
``transcribe``), and cutting at pauses (the energy VAD, or ``--vad`` model; the new ``transcribe``).
``--streamed`` streams each synth-dev clip in 100 ms pieces through
:class:`~hf_w2v2.inference.streaming.StreamingTranscriber` and scores the finals against the offline
transcript of the same clip (cut at the same pauses, as ``hf-w2v2 transcribe`` does; and whole).
``--fsdd`` uses FSDD digit recordings (not those of the digits recipe, transcripts ``ZERO`` .. ``NINE``).

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
from hf_w2v2.data.sources import read_audiofolder
from hf_w2v2.inference.segments import PAUSE_SECONDS, ModelVAD, Segmenter, SegmentSettings
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import error_rates


def load_clips(data: Path, minutes: float) -> tuple[list[np.ndarray], list[str]]:
    rows = read_audiofolder(data)
    clips, texts, total = [], [], 0.0
    while total < minutes * 60:
        for row in rows:
            audio = load_audio(str(row.path))
            clips.append(audio)
            texts.append(str(row.text))
            total += audio.shape[0] / 16_000
            if total >= minutes * 60:
                break
    return clips, texts


DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")


FSDD_SUBSET = Path("examples/data/fsdd-digits")  # the digits recipe's training/dev clips, left out of the probe


def load_fsdd(data: Path, count: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """``count`` random FSDD recordings at 16 kHz (none of examples/data/fsdd-digits) and their digit words."""
    used = set()
    for table in FSDD_SUBSET.glob("*/metadata.csv"):
        with table.open(newline="", encoding="utf-8") as handle:
            used |= {Path(r["file_name"]).name for r in csv.DictReader(handle)}
    with (data / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if Path(r["file_name"]).name not in used]
    picked = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    return [load_audio(data / rows[i]["file_name"]) for i in picked], [DIGITS[int(rows[i]["label"])] for i in picked]


def segmented(args: argparse.Namespace, clips: list[np.ndarray], texts: list[str]) -> None:
    """Issue 34: clip by clip vs one long recording with pauses, in windows or cut at pauses."""
    reference = " ".join(texts)
    gap = np.zeros(int(args.gap_s * 16_000), dtype=np.float32)
    long = np.concatenate([x for c in clips for x in (c, gap)])[: -gap.shape[0] or None]
    print(f"{len(clips)} clips + {args.gap_s:g} s gaps: {long.shape[0] / 16_000:.0f} s")
    base = Transcriber.from_pretrained(args.model, use_lm=False, device="cpu", chunk_s=args.chunk_s)
    vad = ModelVAD.from_pretrained(args.vad) if args.vad else None

    def run(name: str, hypothesis: str) -> None:
        rates = error_rates([reference], [hypothesis])
        print(f"{name:<48} CER {rates['cer']:.3f}  WER {rates['wer']:.3f}  ({time.perf_counter() - start:.0f} s)")

    start = time.perf_counter()
    run("clip by clip", " ".join(base.transcribe_array(c).text for c in clips))
    for chunk_s in (args.chunk_s, 4.0):
        windows = Transcriber(base.model, base.processor, device="cpu", chunk_s=chunk_s)
        start = time.perf_counter()
        run(f"long, whole-file normalisation, {chunk_s:g} s windows", windows.transcribe_array(long).text)
    for pause in args.pause_s:
        segmenter = Segmenter(SegmentSettings(pause_seconds=pause), vad)
        cut = Transcriber(base.model, base.processor, device="cpu", chunk_s=args.chunk_s, segmenter=segmenter)
        start = time.perf_counter()
        count = len(cut.segments(long))
        name = f"long, cut at {pause:g} s pauses ({'VAD model' if vad else 'energy'}, {count} segments)"
        run(name, cut.transcribe_array(long).text)


def streamed(args: argparse.Namespace) -> None:
    """Issue 34: the finals of each streamed clip against its offline transcripts."""
    from hf_w2v2.inference.streaming import StreamingTranscriber, StreamSettings

    with (Path(args.data) / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    base = Transcriber.from_pretrained(args.model, use_lm=False, device="cpu", chunk_s=args.chunk_s)
    settings = StreamSettings(pause_seconds=args.pause_s[0])
    streamer = StreamingTranscriber(base, settings)
    cut = Transcriber(base.model, base.processor, device="cpu", segmenter=Segmenter(settings.segment_settings()))
    refs, whole, segmented, finals = [], [], [], []
    start, piece = time.perf_counter(), 1_600  # 100 ms
    for row in rows:
        audio = load_audio(Path(args.data) / row["file_name"])
        session = streamer.session(16_000)
        events = [e for k in range(0, audio.shape[0], piece) for e in session.feed(audio[k : k + piece])]
        finals.append(" ".join(e.text for e in events + session.finish() if e.type == "final"))
        refs.append(row["text"])
        whole.append(base.transcribe_array(audio).text)
        segmented.append(cut.transcribe_array(audio).text)
    print(f"{len(rows)} clips streamed in 100 ms pieces ({time.perf_counter() - start:.0f} s)")
    for name, hyps in (("offline, cut at pauses", segmented), ("offline, whole clip", whole), ("streamed", finals)):
        print(f"{name:<24} CER vs reference {error_rates(refs, hyps)['cer']:.4f}")
    for name, offline in (("offline, cut at pauses", segmented), ("offline, whole clip", whole)):
        differ = sum(a != b for a, b in zip(offline, finals))
        print(f"streamed vs {name:<24} CER {error_rates(offline, finals)['cer']:.4f} ({differ} clips differ)")


def write_hour(args: argparse.Namespace) -> None:
    """An hour of synth-dev clips with 0.4 s gaps (``PREFIX.flac``) and its transcript (``PREFIX.txt``)."""
    import soundfile as sf

    clips, texts = load_clips(Path(args.data), 60.0)
    gap = np.zeros(int(0.4 * 16_000), dtype=np.float32)
    ends = np.cumsum([c.shape[0] + gap.shape[0] for c in clips])
    count = int(np.searchsorted(ends, 3600 * 16_000)) + 1  # clips (with their gaps) until an hour is reached
    clips, texts = clips[:count], texts[:count]
    sf.write(f"{args.write_hour}.flac", np.concatenate([x for c in clips for x in (c, gap)]), 16_000)
    Path(f"{args.write_hour}.txt").write_text(" ".join(texts) + "\n", encoding="utf-8")
    print(f"{args.write_hour}.flac: {len(clips)} clips, {len(' '.join(texts).split())} words")


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
    parser.add_argument("--segmented", action="store_true", help="issue 34: windows vs cutting at pauses")
    parser.add_argument("--streamed", action="store_true", help="issue 34: streamed finals vs offline transcripts")
    parser.add_argument("--write-hour", default=None, metavar="PREFIX", help="write an hour of audio + transcript")
    parser.add_argument("--fsdd", default=None, help="with --segmented: FSDD folder (digit clips) instead of --data")
    parser.add_argument("--clips", type=int, default=400, help="with --fsdd: recordings to join")
    parser.add_argument("--vad", default=None, help="with --segmented: VAD model folder (default: energy VAD)")
    parser.add_argument(
        "--pause-s", type=float, nargs="+", default=[PAUSE_SECONDS], help="with --segmented: pauses to try"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.write_hour:
        write_hour(args)
        return
    if args.streamed:
        streamed(args)
        return
    if args.segmented:
        if args.fsdd:
            segmented(args, *load_fsdd(Path(args.fsdd), args.clips))
        else:
            segmented(args, *load_clips(Path(args.data), args.minutes))
        return
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
