"""Decoding numbers: ARPA build time, LM beam-search throughput, long-audio peak memory.

    python bench/bench_decoding.py lm          # 4-gram from ../shared/data/text/lm_corpus.txt
    python bench/bench_decoding.py beam        # utterances/s at beam 100 (needs the lm step's ARPA)
    python bench/bench_decoding.py long-audio  # 10 min recording, peak RSS (BASE-size random model)
    python bench/bench_decoding.py all         # each of the above in its own process

Beam throughput is measured on simulated logits (:mod:`hf_w2v2.decoding.synthetic`: synth-dev
transcripts, 4 frames per character, ``--simulation`` confident or uncertain) unless ``--model``
gives a fine-tuned model, whose real synth-dev logits are then used. Peak memory is the process's
``ru_maxrss`` after transcribing, in a process that did nothing else.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hf_w2v2.data.sources import Utterance, read_audiofolder

DATA = Path("../shared/data")
WORK = Path(tempfile.gettempdir()) / "hf_w2v2_bench_decoding"
SIMULATIONS = {  # synthetic_logits settings: a confident model, and an unsure one (more live beams)
    "confident": dict(confusion=0.1, peak=8.0, noise=0.5),
    "uncertain": dict(confusion=0.2, peak=6.0, noise=1.0),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_lm(args: argparse.Namespace) -> None:
    from hf_w2v2.decoding.arpa import build_arpa

    WORK.mkdir(parents=True, exist_ok=True)
    for prune, name in [((), "lm4_full.arpa"), ((0, 0, 1, 1), "lm4.arpa")]:
        start = time.perf_counter()
        model = build_arpa(DATA / "text" / "lm_corpus.txt", WORK / name, order=4, prune=prune, progress=False)
        seconds = time.perf_counter() - start
        sizes = [len(p) for p in model.probs]
        print(
            f"ARPA 4-gram prune={prune or 'none'}: {seconds:.1f} s, {os.path.getsize(WORK / name) / 1e6:.1f} MB, "
            f"n-grams {sizes}, discounts {[tuple(round(d, 3) for d in ds) for ds in model.discounts]}"
        )
    print(f"peak RSS {peak_rss_mb():.0f} MB")


def _dev_rows() -> list[Utterance]:
    return read_audiofolder(DATA / "synth-dev")


def bench_beam(args: argparse.Namespace) -> None:
    from hf_w2v2.decoding.alphabet import CTCAlphabet
    from hf_w2v2.decoding.beam import BeamSearchDecoder
    from hf_w2v2.decoding.greedy import greedy_decode
    from hf_w2v2.decoding.synthetic import SimulatedAcoustics, synthetic_logits
    from hf_w2v2.text.error_rates import word_error_rate
    from hf_w2v2.text.vocab import build_vocab

    rows = _dev_rows()
    texts = [str(r.text) for r in rows]
    if args.model:
        from hf_w2v2.data.audio import load_audio
        from hf_w2v2.inference.transcribe import Transcriber

        transcriber = Transcriber.from_pretrained(args.model, use_lm=False)
        alphabet = transcriber.alphabet
        logits = [transcriber.logits(load_audio(str(r.path))) for r in rows]
        source = f"real logits of {args.model}"
    else:
        alphabet = CTCAlphabet.from_vocab(build_vocab(texts))
        g = torch.Generator().manual_seed(0)
        preset = SIMULATIONS[args.simulation]
        acoustics = SimulatedAcoustics(frames_per_char=4, **preset)
        logits = [synthetic_logits(t, alphabet, acoustics, generator=g) for t in texts]
        source = f"simulated '{args.simulation}' logits {preset}"
    lm_path = args.lm or WORK / "lm4.arpa"
    start = time.perf_counter()
    decoder = BeamSearchDecoder(alphabet, lm_path=lm_path, alpha=args.alpha, beta=args.beta, beam_width=100)
    print(
        f"decoder with {lm_path} loaded in {time.perf_counter() - start:.1f} s; {len(logits)} synth-dev utts, {source}"
    )
    greedy = [greedy_decode(x, alphabet)[0].text for x in logits]
    decoder.decode_batch(logits[:5])  # warm-up
    for processes in (1, args.processes):
        start = time.perf_counter()
        hyps = [t.text for t in decoder.decode_batch(logits, num_processes=processes)]
        seconds = time.perf_counter() - start
        print(
            f"beam 100, {processes} process(es): {len(logits) / seconds:.1f} utt/s "
            f"(greedy WER {word_error_rate(texts, greedy):.3f}, LM WER {word_error_rate(texts, hyps):.3f})"
        )


def bench_long_audio(args: argparse.Namespace) -> None:
    from hf_w2v2.data.audio import load_audio
    from hf_w2v2.data.processor import build_processor
    from hf_w2v2.inference.transcribe import Transcriber
    from hf_w2v2.models.configuration import base
    from hf_w2v2.models.ctc import Wav2Vec2ForCTC
    from hf_w2v2.text.vocab import build_vocab, load_tokenizer, save_vocab

    WORK.mkdir(parents=True, exist_ok=True)
    recording = WORK / f"long_{int(args.minutes)}min.flac"
    if not recording.exists():
        pieces, total, rows = [], 0, _dev_rows()
        while total < args.minutes * 60 * 16_000:
            audio = load_audio(str(rows[len(pieces) % len(rows)].path))
            pieces.append(audio)
            total += audio.shape[0]
        sf.write(recording, np.concatenate(pieces)[: int(args.minutes * 60 * 16_000)], 16_000)
    if args.model:
        transcriber = Transcriber.from_pretrained(
            args.model, use_lm=False, chunk_s=args.chunk_s, batch_size=args.batch_size
        )
        what = args.model
    else:
        tokenizer = load_tokenizer(save_vocab(build_vocab([str(r.text) for r in _dev_rows()]), WORK / "vocab"))
        torch.manual_seed(0)
        model = Wav2Vec2ForCTC(base(vocab_size=len(tokenizer)))
        transcriber = Transcriber(
            model, build_processor(model.config, tokenizer), chunk_s=args.chunk_s, batch_size=args.batch_size
        )
        what = "random-init BASE (95 M parameters)"
    before = peak_rss_mb()
    start = time.perf_counter()
    result = transcriber.transcribe_files([str(recording)], progress=False)[0]
    seconds = time.perf_counter() - start
    print(
        f"{result.duration / 60:.1f} min recording, {what}, chunk {args.chunk_s} s, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads: {seconds:.0f} s ({result.duration / seconds:.1f}x real time), "
        f"{len(result.transcription.words)} words"
    )
    print(f"peak RSS {peak_rss_mb():.0f} MB (after loading the model: {before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["lm", "beam", "long-audio", "all"])
    parser.add_argument("--model", default=None, help="fine-tuned model folder (default: simulated/random)")
    parser.add_argument("--lm", default=None, help="ARPA file for the beam step (default: the lm step's)")
    parser.add_argument("--alpha", type=float, default=0.5, help="LM weight for the beam step")
    parser.add_argument("--beta", type=float, default=1.0, help="word bonus for the beam step")
    parser.add_argument(
        "--simulation",
        choices=sorted(SIMULATIONS),
        default="confident",
        help="simulated logits for the beam step when no --model is given",
    )
    parser.add_argument("--processes", type=int, default=2, help="processes for the parallel beam run")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long recording")
    parser.add_argument("--chunk-s", type=float, default=20.0, help="window length for the long recording")
    parser.add_argument("--batch-size", type=int, default=1, help="windows per forward pass")
    args = parser.parse_args()
    if args.what == "all":
        for step in ("lm", "beam", "long-audio"):
            subprocess.run([sys.executable, __file__, step, *sys.argv[2:]], check=True)
        return
    {"lm": bench_lm, "beam": bench_beam, "long-audio": bench_long_audio}[args.what](args)


if __name__ == "__main__":
    main()
