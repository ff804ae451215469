"""Make a labelled keyword corpus with offline TTS: every keyword, every voice (espeak-ng, flite, festival + sox).

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox
    python examples/make_synth_keywords.py --output_dir runs/synth-digits --lowpass_hz 4000

The default keywords are the digits with FSDD's labels (``0=zero ... 9=nine``), so the corpus adds
about 250 synthetic speakers to FSDD training sets (``make_splits.py --concat``); ``--lowpass_hz 4000``
band-limits it like FSDD's 8 kHz recordings. For speaker recognition, ``--speaker_prosody`` makes
each voice one consistent speaker (its ``speaker_id`` column is the whole voice) and
``--exclude_speakers`` keeps held-out test voices out. Each clip draws its own rate, pitch and augmentation
and is trimmed of silence. Writes an audiofolder (``metadata.csv`` with a ``label`` column +
``audio/``) that ``finetune_classification.py`` reads. The logic lives in :mod:`hf_w2v2.data.synthesize`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_w2v2.data.synthesize import check_tools, default_voices, plan_keywords, synthesize_corpus

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGITS = [f"{i}={word}" for i, word in enumerate(WORDS)]


@dataclass
class KeywordArguments:
    output_dir: str = field(metadata={"help": "audiofolder to write (metadata.csv + audio/)"})
    keywords: list[str] = field(default_factory=lambda: list(DIGITS), metadata={"help": "LABEL=TEXT pairs"})
    engines: list[str] = field(
        default_factory=lambda: ["espeak", "flite", "festival"], metadata={"help": "TTS engines (all their voices)"}
    )
    exclude_speakers: list[str] = field(
        default_factory=list, metadata={"help": "voices or espeak accents to leave out (e.g. held-out test speakers)"}
    )
    repeats: int = field(default=1, metadata={"help": "clips of each keyword per voice"})
    speaker_prosody: bool = field(
        default=False, metadata={"help": "one rate/pitch per voice, no speed/pitch shifts (speaker recognition)"}
    )
    lowpass_hz: int = field(default=0, metadata={"help": "band-limit to this frequency (4000 for 8 kHz data)"})
    augment_p: float = field(default=0.35, metadata={"help": "probability of each augmentation"})
    num_workers: int = field(default=2, metadata={"help": "parallel synthesis processes"})
    seed: int = field(default=0, metadata={"help": "seed of rates, pitches and augmentation"})


def parse_keywords(pairs: list[str]) -> dict[str, str]:
    """``["0=zero", "1=one"]`` -> ``{"0": "zero", "1": "one"}`` (a clear error for a pair without ``=``)."""
    keywords = {}
    for pair in pairs:
        label, sep, text = pair.partition("=")
        if not sep or not label or not text.strip():
            raise SystemExit(f"--keywords takes LABEL=TEXT pairs, got {pair!r}")
        keywords[label] = text
    return keywords


def main() -> None:
    (args,) = HfArgumentParser(KeywordArguments).parse_args_into_dataclasses()
    check_tools(args.engines)
    voices = {
        engine: names for engine, names in default_voices(args.exclude_speakers).items() if engine in args.engines
    }
    items = plan_keywords(
        parse_keywords(args.keywords),
        voices=voices,
        repeats=args.repeats,
        augment_p=args.augment_p,
        lowpass_hz=args.lowpass_hz,
        speaker_prosody=args.speaker_prosody,
        seed=args.seed,
    )
    report = synthesize_corpus(items, args.output_dir, num_workers=args.num_workers, seed=args.seed)
    print(f"wrote {len(report.rows)} clips, {report.hours * 60:.1f} min, to {args.output_dir}/metadata.csv")
    for line in report.failure_lines():
        print(line)


if __name__ == "__main__":
    main()
