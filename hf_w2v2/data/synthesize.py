"""Make more transcribed speech with offline text-to-speech engines, the way ``synth-*`` was made.

A corpus is *planned* first (pure and seeded: which sentence, which voice, which speaking rate
and pitch, which augmentation), then *rendered*: one TTS command per utterance, one ``sox``
command for speed / pitch shift / reverb / telephone band-pass and resampling to 16 kHz, then
coloured noise mixed in at a random SNR. The output is an audiofolder (``metadata.csv`` with
``file_name,text,speaker_id,voice,engine,duration``, plus ``label`` for keyword corpora
planned by :func:`plan_keywords`) that :mod:`hf_w2v2.data.sources` reads.

Engines are Debian packages (``apt-get install espeak-ng flite festival festvox-kallpc16k
festvox-us-slt-hts sox``); :func:`check_tools` names what is missing.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

SAMPLE_RATE = 16_000
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us-nyc")
ESPEAK_VARIANTS = (
    "",
    "Alex",
    "Andy",
    "Annie",
    "Denis",
    "Gene",
    "Lee",
    "Michael",
    "Paul",
    "Steph",
    "Storm",
    "anika",
    "edward",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "grandma",
    "grandpa",
    "iven",
    "john",
    "linda",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "max",
    "norbert",
    "robert",
    "travis",
    "victor",
)
FLITE_VOICES = ("kal16", "awb", "slt")
FESTIVAL_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
UNSEEN_VOICES: dict[str, list[str]] = {
    "espeak": ["en-029" + (f"+{variant}" if variant else "") for variant in ESPEAK_VARIANTS],
    "flite": ["rms"],
}
"""Voices that neither the synth sets nor :func:`default_voices` use (espeak's Caribbean accent, flite's
rms): speech in them is speech of voices that appear in no training set."""
ENGINE_TOOLS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
APT_PACKAGES = "espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox"
NOISE_KINDS = ("white", "pink", "brown")
SECONDS_PER_WORD = 0.31  # measured on synth-train: ~0.3 s of speech per word with these engines
_NOT_SPOKEN = re.compile(r"[^A-Z' ]+")


@dataclass(frozen=True)
class Augmentation:
    """What happens to one clip after synthesis (every field may be a no-op)."""

    speed: float = 1.0  # sox ``speed``: tempo and pitch together (0.9 / 1.0 / 1.1)
    pitch_cents: int = 0  # sox ``pitch``: pitch only
    reverb: int = 0  # sox ``reverb`` amount 0-100 (0: none)
    telephone: bool = False  # 300-3400 Hz band-pass
    noise: str | None = None  # one of NOISE_KINDS, or None
    snr_db: float = 30.0  # signal-to-noise ratio of the added noise
    lowpass_hz: int = 0  # band-limit like a recording at 2 x this rate (0: none)
    trim_silence: bool = False  # cut the engine's leading and trailing silence (tight keyword clips)

    def sox_effects(self) -> list[str]:
        """The ``sox`` effect chain (after the output file name) that applies everything but the noise."""
        effects: list[str] = []
        if self.trim_silence:  # leading silence, then the reversed clip's leading silence
            trim = ["silence", "1", "0.02", "1%"]
            effects += trim + ["reverse"] + trim + ["reverse"]
        if self.speed != 1.0:
            effects += ["speed", f"{self.speed:g}"]
        if self.pitch_cents:
            effects += ["pitch", str(self.pitch_cents)]
        if self.reverb:
            effects += ["reverb", str(self.reverb)]
        if self.telephone:
            effects += ["sinc", "300-3400"]
        if self.lowpass_hz:
            effects += ["sinc", f"-{self.lowpass_hz}"]
        return effects + ["rate", str(SAMPLE_RATE)]  # `speed` changes the rate: resample last


@dataclass(frozen=True)
class SynthItem:
    """One planned utterance."""

    index: int
    text: str
    engine: str  # espeak | flite | festival
    voice: str  # engine voice name (espeak: ``accent+variant``)
    rate: int = 175  # espeak words per minute
    pitch: int = 50  # espeak pitch 0-99
    augmentation: Augmentation = field(default_factory=Augmentation)
    label: str | None = None  # a class label written as the ``label`` column (keyword corpora)
    speaker: str | None = None  # the ``speaker_id`` to write instead of the voice's accent

    @property
    def speaker_id(self) -> str:
        """``speaker``, else the voice without its variant (the ``speaker_id`` column of the synth sets)."""
        return self.speaker or self.voice.split("+")[0]

    @property
    def file_name(self) -> str:
        return f"audio/{self.engine}-{self.index:05d}.flac"


def normalize_sentence(line: str) -> str:
    """Upper-case letters, apostrophes and single spaces (the synth sets' transcript alphabet)."""
    return " ".join(_NOT_SPOKEN.sub(" ", line.upper().replace("-", " ")).split())


def pick_sentences(
    lines: Iterable[str],
    count: int,
    *,
    min_words: int = 5,
    max_words: int = 30,
    exclude: Iterable[str] = (),
    seed: int = 0,
) -> list[str]:
    """``count`` distinct normalised sentences of ``min_words``-``max_words`` words, none in ``exclude``."""
    excluded = {normalize_sentence(text) for text in exclude}
    eligible = sorted(
        {s for s in map(normalize_sentence, lines) if min_words <= len(s.split()) <= max_words and s not in excluded}
    )
    if count > len(eligible):
        raise ValueError(
            f"asked for {count} sentences but only {len(eligible)} have {min_words}-{max_words} "
            "words and are not excluded"
        )
    return random.Random(seed).sample(eligible, count)


def count_for_hours(
    lines: Sequence[str],
    hours: float,
    *,
    min_words: int = 5,
    max_words: int = 30,
    seed: int = 0,
    sample_size: int = 2000,
) -> int:
    """Utterances needed for about ``hours`` of speech, from the mean length of a sample of eligible sentences."""
    pool = pick_sentences(lines, sample_size, min_words=min_words, max_words=max_words, seed=seed)
    mean_words = sum(len(s.split()) for s in pool) / len(pool)
    return round(hours * 3600 / (mean_words * SECONDS_PER_WORD))


def default_voices(exclude: Iterable[str] = ()) -> dict[str, list[str]]:
    """Voices per engine: every espeak accent x variant, and the flite / festival voices of the synth sets.

    ``exclude`` names voices (``en-gb+f2``, ``awb``) or whole espeak accents (``en-us-nyc``) to leave out.
    """
    excluded = set(exclude)
    espeak = [accent + (f"+{variant}" if variant else "") for accent in ESPEAK_ACCENTS for variant in ESPEAK_VARIANTS]
    voices = {"espeak": espeak, "flite": list(FLITE_VOICES), "festival": list(FESTIVAL_VOICES)}
    return {
        engine: [v for v in names if v not in excluded and v.split("+")[0] not in excluded]
        for engine, names in voices.items()
    }


def check_engines(engines: Iterable[str]) -> None:
    """Raise a clear error naming any engine that is not one of :data:`ENGINE_TOOLS`."""
    unknown = sorted(set(engines) - set(ENGINE_TOOLS))
    if unknown:
        raise ValueError(f"unknown TTS engine(s) {unknown}; known: {sorted(ENGINE_TOOLS)}")


def sample_augmentation(rng: random.Random, p: float = 0.35) -> Augmentation:
    """Each effect on with probability ``p`` (speed: 0.9 or 1.1; noise at 5-30 dB SNR)."""
    on = lambda: rng.random() < p
    return Augmentation(
        speed=rng.choice((0.9, 1.1)) if on() else 1.0,
        pitch_cents=rng.choice((-300, -200, -100, 100, 200, 300)) if on() else 0,
        reverb=rng.randint(10, 60) if on() else 0,
        telephone=on() and rng.random() < 0.5,  # rarer: it removes the most information
        noise=rng.choice(NOISE_KINDS) if on() else None,
        snr_db=round(rng.uniform(5.0, 30.0), 1),
    )


def plan_corpus(
    sentences: Sequence[str],
    *,
    engine_weights: dict[str, float] | None = None,
    voices: dict[str, list[str]] | None = None,
    augment_p: float = 0.35,
    seed: int = 0,
) -> list[SynthItem]:
    """One :class:`SynthItem` per sentence: engine by weight, voice uniform, espeak rate/pitch random."""
    weights = engine_weights or {"flite": 0.45, "espeak": 0.35, "festival": 0.20}
    voices = voices or default_voices()
    check_engines(weights)
    rng = random.Random(seed)
    engines = list(weights)
    items = []
    for index, text in enumerate(sentences):
        engine = rng.choices(engines, weights=[weights[e] for e in engines])[0]
        items.append(
            SynthItem(
                index=index,
                text=text,
                engine=engine,
                voice=rng.choice(voices[engine]),
                rate=rng.randint(130, 200),
                pitch=rng.randint(25, 75),
                augmentation=sample_augmentation(rng, augment_p),
            )
        )
    return items


def plan_keywords(
    keywords: dict[str, str],
    *,
    voices: dict[str, list[str]] | None = None,
    repeats: int = 1,
    augment_p: float = 0.35,
    lowpass_hz: int = 0,
    speaker_prosody: bool = False,
    seed: int = 0,
) -> list[SynthItem]:
    """Every keyword spoken ``repeats`` times by every voice: a labelled corpus for keyword spotting.

    ``keywords`` maps a label to the text that says it (``{"0": "zero", "1": "one"}``). Each clip
    draws its own espeak rate/pitch and augmentation, is trimmed of silence and, with ``lowpass_hz``,
    band-limited like the recordings it should resemble (4000 for 8 kHz audio such as FSDD).

    ``speaker_prosody=True`` makes each voice one consistent speaker (for speaker recognition): the
    voice draws its rate and pitch once, each clip varies them a little (rate +-10, pitch +-4), and
    no clip is sped up or pitch-shifted (noise, reverb and the telephone band still apply), and the
    ``speaker_id`` column is the whole voice (``en-gb+f2``), not its accent.
    """
    if not keywords:
        raise ValueError("no keywords to speak")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    voices = voices or default_voices()
    check_engines(voices)
    rng = random.Random(seed)
    items: list[SynthItem] = []
    for engine, names in voices.items():
        for voice in names:
            voice_rate, voice_pitch = (rng.randint(140, 190), rng.randint(30, 70)) if speaker_prosody else (0, 0)
            for _ in range(repeats):
                for label, text in keywords.items():
                    augmentation = replace(
                        sample_augmentation(rng, augment_p), lowpass_hz=lowpass_hz, trim_silence=True
                    )
                    if speaker_prosody:
                        augmentation = replace(augmentation, speed=1.0, pitch_cents=0)
                        rate, pitch = voice_rate + rng.randint(-10, 10), voice_pitch + rng.randint(-4, 4)
                    else:
                        rate, pitch = rng.randint(130, 200), rng.randint(25, 75)
                    items.append(
                        SynthItem(
                            index=len(items),
                            text=normalize_sentence(text),
                            engine=engine,
                            voice=voice,
                            rate=rate,
                            pitch=pitch,
                            augmentation=augmentation,
                            label=label,
                            speaker=voice if speaker_prosody else None,
                        )
                    )
    return items


def tts_command(item: SynthItem, wav_path: Path, text_path: Path) -> list[str]:
    """The command that speaks ``item.text`` (already written to ``text_path``) into ``wav_path``."""
    if item.engine == "espeak":
        return [
            "espeak-ng",
            "-v",
            item.voice,
            "-s",
            str(item.rate),
            "-p",
            str(item.pitch),
            "-w",
            str(wav_path),
            "-f",
            str(text_path),
        ]
    if item.engine == "flite":
        return ["flite", "-voice", item.voice, "-f", str(text_path), "-o", str(wav_path)]
    if item.engine == "festival":
        return ["text2wave", "-eval", f"(voice_{item.voice})", str(text_path), "-o", str(wav_path)]
    raise ValueError(f"unknown TTS engine {item.engine!r}")


def check_tools(engines: Iterable[str]) -> None:
    """Raise a clear error naming the missing programs and the packages that provide them."""
    needed = [ENGINE_TOOLS[e] for e in engines] + ["sox"]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"missing program(s) {missing}: install them with `apt-get install {APT_PACKAGES}`")


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f^0 (white), 1/f (pink) or 1/f^2 (brown)."""
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(kind)
    if exponent is None:
        raise ValueError(f"unknown noise kind {kind!r}; known: {NOISE_KINDS}")
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.fft.rfftfreq(num_samples)
    freqs[0] = freqs[1] if num_samples > 1 else 1.0  # no infinite gain at DC
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``audio + noise`` scaled to ``snr_db``, then scaled down if it would clip."""
    signal_rms = float(np.sqrt(np.mean(audio**2)))
    mixed = audio + noise * signal_rms / (10 ** (snr_db / 20))
    peak = float(np.max(np.abs(mixed))) if mixed.size else 0.0
    return mixed / peak * 0.99 if peak > 0.99 else mixed


def render_item(item: SynthItem, out_dir: Path, seed: int = 0) -> dict[str, str]:
    """Synthesise, augment and write one item; returns its ``metadata.csv`` row."""
    out_path = out_dir / item.file_name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text_path, raw, processed = Path(tmp) / "text.txt", Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        text_path.write_text(item.text.lower() + "\n", encoding="utf-8")  # some engines spell out CAPITALS
        _run(tts_command(item, raw, text_path))
        _run(["sox", str(raw), "-c", "1", "-b", "16", str(processed)] + item.augmentation.sox_effects())
        audio, rate = sf.read(processed, dtype="float64")
    aug = item.augmentation
    if aug.noise:
        rng = np.random.default_rng([seed, item.index])
        audio = add_noise(audio, colored_noise(aug.noise, len(audio), rng), aug.snr_db)
    sf.write(out_path, audio.astype(np.float32), rate, subtype="PCM_16")
    row = {
        "file_name": item.file_name,
        "text": item.text,
        "speaker_id": item.speaker_id,
        "voice": item.voice,
        "engine": item.engine,
        "duration": f"{len(audio) / rate:.3f}",
    }
    return row if item.label is None else {**row, "label": item.label}


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-300:]}")


@dataclass
class SynthReport:
    """What :func:`synthesize_corpus` made and what failed."""

    rows: list[dict[str, str]]
    failures: list[tuple[SynthItem, str]]

    @property
    def hours(self) -> float:
        return sum(float(row["duration"]) for row in self.rows) / 3600

    def failure_lines(self, limit: int = 20) -> list[str]:
        """The first ``limit`` failures, one line each, and their count (nothing when all rendered)."""
        lines = [f"FAILED {item.engine} {item.voice}: {item.text[:60]!r}: {error}" for item, error in self.failures]
        if self.failures:
            lines = lines[:limit] + [f"{len(self.failures)} item(s) failed and were left out"]
        return lines


def synthesize_corpus(
    items: Sequence[SynthItem], out_dir: str | Path, *, num_workers: int = 2, seed: int = 0, progress: bool = True
) -> SynthReport:
    """Render ``items`` into the audiofolder ``out_dir`` (``metadata.csv`` + ``audio/``).

    A failing utterance is reported in ``failures`` and left out; the others are still written.
    """
    check_tools({item.engine for item in items})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []

    def render(item: SynthItem) -> tuple[SynthItem, dict[str, str] | None, str]:
        try:
            return item, render_item(item, out, seed), ""
        except (RuntimeError, OSError) as error:  # one bad voice/sentence must not stop the corpus
            return item, None, str(error)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:  # the work happens in subprocesses
        results = pool.map(render, items)
        for item, row, error in tqdm(results, total=len(items), desc="synthesizing", disable=not progress):
            if row is None:
                failures.append((item, error))
            else:
                rows.append(row)
    columns = ["file_name", "text", "speaker_id", "voice", "engine", "duration"]
    if any(item.label is not None for item in items):
        columns.append("label")
    with (out / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return SynthReport(rows=rows, failures=failures)
