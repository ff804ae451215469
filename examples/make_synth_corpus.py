"""Make more synthetic training speech (espeak-ng, flite, festival + sox), like ../shared/data/synth-*.

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox
    python examples/make_synth_corpus.py --text_file ../shared/data/text/lm_corpus.txt \\
        --exclude ../shared/data/synth-train ../shared/data/synth-dev --hours 3.1 --output_dir runs/synth-extra

Sentences of 5-30 words are drawn from ``--text_file`` (none of the ``--exclude`` sets' transcripts),
spoken by a random engine/voice/rate/pitch, and augmented at random (speed 0.9/1.1, pitch shift,
reverb, telephone band, white/pink/brown noise). Writes an audiofolder (``metadata.csv`` + ``audio/``)
that ``finetune_ctc.py --extra_train_data`` and ``pretrain.py --extra_train_sources`` read. The logic
lives in :mod:`hf_w2v2.data.synthesize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_w2v2.data.sources import read_source
from hf_w2v2.data.synthesize import check_tools, count_for_hours, pick_sentences, plan_corpus, synthesize_corpus


@dataclass
class SynthArguments:
    text_file: str = field(metadata={"help": "sentences, one per line"})
    output_dir: str = field(metadata={"help": "audiofolder to write (metadata.csv + audio/)"})
    hours: float | None = field(default=None, metadata={"help": "approximate amount of speech to make"})
    num_utterances: int | None = field(default=None, metadata={"help": "number of utterances (instead of --hours)"})
    exclude: list[str] = field(default_factory=list, metadata={"help": "corpora whose transcripts must not be used"})
    engines: list[str] = field(
        default_factory=lambda: ["flite", "espeak", "festival"], metadata={"help": "TTS engines"}
    )
    engine_weights: list[float] = field(default_factory=lambda: [0.45, 0.35, 0.20], metadata={"help": "share of each"})
    augment_p: float = field(default=0.35, metadata={"help": "probability of each augmentation"})
    min_words: int = field(default=5, metadata={"help": "shortest sentence (words)"})
    max_words: int = field(default=30, metadata={"help": "longest sentence (words)"})
    num_workers: int = field(default=2, metadata={"help": "parallel synthesis processes"})
    seed: int = field(default=0, metadata={"help": "seed of sentence choice, voices and augmentation"})


def main() -> None:
    (args,) = HfArgumentParser(SynthArguments).parse_args_into_dataclasses()
    if (args.hours is None) == (args.num_utterances is None):
        raise SystemExit("give exactly one of --hours and --num_utterances")
    if len(args.engine_weights) != len(args.engines):
        raise SystemExit(f"--engine_weights needs {len(args.engines)} values, one per engine")
    check_tools(args.engines)
    with open(args.text_file, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    excluded = [u.text or "" for path in args.exclude for u in read_source(path)]
    count = args.num_utterances
    if count is None:
        count = count_for_hours(lines, args.hours, min_words=args.min_words, max_words=args.max_words, seed=args.seed)
    sentences = pick_sentences(
        lines, count, min_words=args.min_words, max_words=args.max_words, exclude=excluded, seed=args.seed
    )
    items = plan_corpus(
        sentences, engine_weights=dict(zip(args.engines, args.engine_weights)), augment_p=args.augment_p, seed=args.seed
    )
    report = synthesize_corpus(items, args.output_dir, num_workers=args.num_workers, seed=args.seed)
    print(
        f"wrote {len(report.rows)} utterances, {report.hours:.2f} h, to {args.output_dir}/metadata.csv "
        f"(excluded {len(set(excluded))} transcripts)"
    )
    for line in report.failure_lines():
        print(line)


if __name__ == "__main__":
    main()
