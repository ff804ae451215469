"""WER/CER of a fine-tuned CTC model: greedy versus n-gram LM beam search.

    python examples/evaluate_ctc.py --model runs/ctc --data ../shared/data/synth-dev \\
        --lm lm4.arpa --tune --save_decoder

Prints both error rates and writes ``summary.json`` and ``utterances.jsonl`` (reference,
greedy and LM transcript per utterance) into ``--output_dir``. With ``--tune``, alpha and
beta are tuned on a held-out third of the set and the WERs are reported on the rest;
``--save_decoder`` then stores the tuned decoder (alphabet + LM) in the model folder, where
``Transcriber.from_pretrained`` and ``hf-w2v2 transcribe`` pick it up. The logic lives in
:mod:`hf_w2v2.inference.evaluation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from transformers import HfArgumentParser

from hf_w2v2.data.sources import read_source
from hf_w2v2.decoding.beam import BeamSearchDecoder, BeamSettings
from hf_w2v2.decoding.tuning import DEFAULT_ALPHAS, DEFAULT_BETAS, AlphaBetaSearch
from hf_w2v2.inference.evaluation import LMTuning, evaluate_ctc
from hf_w2v2.inference.transcribe import Transcriber


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "model folder (weights, config and processor)"})
    data: str = field(metadata={"help": "labelled set: audiofolder with metadata.csv, manifest or LibriSpeech"})
    lm: str | None = field(
        default=None, metadata={"help": "ARPA/KenLM file; default: the decoder saved with the model"}
    )
    alpha: float | None = field(default=None, metadata={"help": "LM weight (overrides the saved value)"})
    beta: float | None = field(default=None, metadata={"help": "word bonus (overrides the saved value)"})
    beam_width: int = field(default=100, metadata={"help": "beam width of the LM decoding"})
    token_min_logp: float | None = field(
        default=None, metadata={"help": "skip characters below this log-prob at a frame (default: saved or -5)"}
    )
    beam_prune_logp: float | None = field(
        default=None, metadata={"help": "drop beams this far below the best (default: saved or -10)"}
    )
    tune: bool = field(default=False, metadata={"help": "tune alpha/beta on a held-out part of --data"})
    search: str = field(default="grid", metadata={"help": "tuning search: grid or random"})
    alphas: list[float] = field(default_factory=lambda: list(DEFAULT_ALPHAS), metadata={"help": "alpha grid/range"})
    betas: list[float] = field(default_factory=lambda: list(DEFAULT_BETAS), metadata={"help": "beta grid/range"})
    n_trials: int = field(default=20, metadata={"help": "random-search draws"})
    tune_fraction: float = field(default=0.33, metadata={"help": "share of --data used for tuning"})
    tune_beam_width: int = field(default=32, metadata={"help": "beam width during tuning"})
    max_samples: int | None = field(default=None, metadata={"help": "evaluate only the first N utterances"})
    output_dir: str = field(
        default="runs/evaluate_ctc", metadata={"help": "where summary and per-utterance results go"}
    )
    save_decoder: bool = field(default=False, metadata={"help": "save the (tuned) decoder into --model"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 autocast for the model"})
    chunk_s: float = field(default=20.0, metadata={"help": "window length for long audio (seconds)"})
    num_processes: int = field(default=1, metadata={"help": "beam-search processes"})
    seed: int = field(default=0, metadata={"help": "seed of the tuning split and random search"})


def main() -> None:
    (args,) = HfArgumentParser(EvaluateArguments).parse_args_into_dataclasses()
    beam = BeamSettings(
        beam_width=args.beam_width,
        alpha=args.alpha,
        beta=args.beta,
        token_min_logp=args.token_min_logp,
        beam_prune_logp=args.beam_prune_logp,
    )
    transcriber = Transcriber.from_pretrained(
        args.model, lm_path=args.lm, device=args.device, bf16=args.bf16, chunk_s=args.chunk_s, beam=beam
    )
    decoder: BeamSearchDecoder | None = transcriber.decoder
    utterances = read_source(args.data)
    if isinstance(utterances, dict):
        raise ValueError(f"{args.data} holds several splits ({', '.join(utterances)}); point --data at one")
    utterances = utterances[: args.max_samples]
    search = AlphaBetaSearch(
        alphas=args.alphas,
        betas=args.betas,
        search=args.search,
        n_trials=args.n_trials,
        seed=args.seed,
        beam_width=args.tune_beam_width,
    )
    tuning = LMTuning(search, args.tune_fraction) if args.tune else None
    report = evaluate_ctc(transcriber, utterances, tuning=tuning, num_processes=args.num_processes)
    report.write(args.output_dir)
    summary = report.summary()
    if summary["tuning"] is not None:  # the full trial table is in summary.json
        summary["tuning"] = {k: v for k, v in summary["tuning"].items() if k != "trials"}
    print(json.dumps(summary, indent=2))
    if decoder is not None and args.save_decoder:
        used = replace(beam, alpha=report.alpha, beta=report.beta)  # the tuned pair when --tune
        decoder.save_pretrained(args.model, used, tuning=report.tuning)
        print(f"decoder saved in {args.model} (alpha={used.alpha}, beta={used.beta})")


if __name__ == "__main__":
    main()
