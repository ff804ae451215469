"""The paper's low-label claim in miniature (wav2vec 2.0, Table 1): pre-trained vs random init, with
10 minutes, 1 hour and all of the labels, decoded greedily and with a 4-gram LM.

One function, :func:`run_study`, runs it all from a :class:`StudyConfig`:

1. the "unseen voices" score set: the dev sentences spoken afresh by voices that no synth set uses
   (``unseen_utterances``, :data:`~hf_w2v2.data.synthesize.UNSEEN_VOICES`), plus the clips of any
   whole voices held out of the labelled pool (``heldout_voices``, seeded); none of these voices is
   in any training set, labelled or not;
2. pre-training (the small recipe, ``pretrain_steps`` / ``pretrain_minutes``) on the pool's audio
   plus ``unlabeled_hours`` of generated speech and any ``unlabeled`` sources, every clip of an
   unseen voice removed;
3. labelled subsets of ``label_minutes`` (seeded, each a superset of the smaller ones, written as
   manifests so they are listed) plus all of the pool;
4. for each subset, fine-tuning from the pre-trained encoder and from random init with the same
   recipe, vocabulary and ``finetune_minutes`` budget;
5. scoring on ``dev_data`` (alpha/beta of the LM tuned on a third of it, WER/CER on the rest) and on
   the unseen voices (with the alpha/beta tuned on dev), greedy and LM;
6. ``results.json``, a Markdown table laid out like the paper's Table 1 and a PNG plot.

``quick=True`` shrinks every budget for a smoke test (a tiny model, seconds per run, a 4-beam LM search).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hf_w2v2.data.audio import audio_info
from hf_w2v2.data.sources import Utterance, read_audiofolder
from hf_w2v2.data.synthesize import UNSEEN_VOICES, count_for_hours, pick_sentences, plan_corpus, synthesize_corpus
from hf_w2v2.decoding.arpa import build_arpa
from hf_w2v2.decoding.beam import BeamSettings
from hf_w2v2.decoding.tuning import AlphaBetaSearch
from hf_w2v2.finetune.arguments import parse_finetune_args
from hf_w2v2.finetune.data import choose_processor
from hf_w2v2.finetune.run import run_finetuning
from hf_w2v2.inference.evaluation import LMTuning, evaluate_ctc
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.models.configuration import config_from_name
from hf_w2v2.pretrain.arguments import parse_pretrain_args
from hf_w2v2.pretrain.run import run_pretraining
from hf_w2v2.text.normalize import TextNormalizer

logger = logging.getLogger(__name__)

ALL_LABELS = "all"
SCORES_FILE = "study_scores.json"
INITS = ("pretrained", "random")


@dataclass
class StudyConfig:
    """Everything the study needs; the defaults are the documented run (docs/low_label_study.md)."""

    output_dir: str
    """Folder for every run, manifest, LM, table and plot."""
    pool: str = "../shared/data/synth-train"
    """Labelled audiofolder (``metadata.csv`` with ``file_name``, ``text``, ``voice``); paths are
    relative to the repository root, where the study is run."""
    dev_data: str = "../shared/data/synth-dev"
    """Score set of training voices and unseen sentences."""
    lm_corpus: str = "../shared/data/text/lm_corpus.txt"
    """Text for the 4-gram LM (none of the score sets' sentences)."""
    unlabeled_hours: float = 1.5
    """Speech generated (default voices, sentences of ``lm_corpus`` not in the pool or dev) for
    pre-training, in ``output_dir/unlabeled``; 0 for none."""
    unlabeled: list[str] = field(default_factory=list)
    """More unlabeled audiofolders for pre-training (with a ``voice`` column, so that unseen voices
    can be removed)."""
    unseen_utterances: int = 150
    """Dev sentences spoken by :data:`UNSEEN_VOICES` into ``output_dir/unseen``, scored as unseen
    voices; 0 for none."""
    label_minutes: list[float] = field(default_factory=lambda: [10.0, 60.0])
    """Labelled subsets (minutes of audio); all of the pool is always added."""
    heldout_voices: int = 0
    """Whole voices of the pool removed from every training set and scored as unseen voices too."""
    pretrain_recipe: str = "examples/configs/pretrain_small.json"
    finetune_recipe: str = "examples/configs/finetune_low_label.yaml"
    model_preset: str = "small"
    """Architecture of the random-init runs (the pre-trained model's own)."""
    pretrain_minutes: float = 60.0
    """Wall-time cap of pre-training."""
    pretrain_steps: int | None = None
    """Optimizer steps of pre-training (the recipe's when None): a budget that does not depend on the
    machine's load."""
    finetune_minutes: float = 20.0
    """Wall-time cap of each fine-tuning run."""
    finetune_steps: int | None = None
    """Optimizer steps of every fine-tuning run (the same for both inits; the time cap rules when None)."""
    synth_workers: int = 2
    lm_order: int = 4
    seed: int = 0
    quick: bool = False
    """Smoke-test mode: a tiny model and a few optimizer steps per run."""
    pretrain_from: str | None = None
    """Reuse this pre-trained folder instead of pre-training (its provenance is stated by the caller)."""


@dataclass(frozen=True)
class PoolClip:
    path: str
    text: str
    voice: str
    seconds: float


def read_pool(folder: str) -> list[PoolClip]:
    """The clips of an audiofolder with their voice (``voice``, else ``speaker_id``) and duration."""
    with Path(folder, "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    utterances = read_audiofolder(folder)
    if len(rows) != len(utterances):
        raise ValueError(f"{folder}/metadata.csv: {len(rows)} rows but {len(utterances)} utterances read")
    clips = []
    for row, utt in zip(rows, utterances):
        voice = row.get("voice") or row.get("speaker_id")
        if not voice:
            raise ValueError(f"{folder}/metadata.csv needs a 'voice' or 'speaker_id' column to hold voices out")
        seconds = float(row["duration"]) if row.get("duration") else audio_info(str(utt.path)).duration
        clips.append(PoolClip(str(utt.path), utt.text or "", voice, seconds))
    return clips


def hold_out_voices(clips: Sequence[PoolClip], count: int, seed: int) -> tuple[list[PoolClip], list[PoolClip]]:
    """``(training clips, clips of `count` held-out voices)``, the voices drawn with ``seed``."""
    voices = sorted({clip.voice for clip in clips})
    if count >= len(voices):
        raise ValueError(f"cannot hold out {count} of {len(voices)} voices")
    held = set(random.Random(seed).sample(voices, count))
    return [c for c in clips if c.voice not in held], [c for c in clips if c.voice in held]


def label_subsets(clips: Sequence[PoolClip], minutes: Sequence[float], seed: int) -> dict[str, list[PoolClip]]:
    """Nested seeded subsets of ``minutes`` of audio each (the smallest clip prefix reaching it), plus all."""
    order = list(clips)
    random.Random(seed).shuffle(order)
    subsets: dict[str, list[PoolClip]] = {}
    for target in sorted(minutes):
        total, count = 0.0, 0
        while count < len(order) and total < 60.0 * target:
            total += order[count].seconds
            count += 1
        subsets[subset_name(target)] = order[:count]
    subsets[ALL_LABELS] = order
    return subsets


def subset_name(minutes: float) -> str:
    return f"{minutes:g}min"


def write_manifest(path: Path, clips: Sequence[PoolClip]) -> str:
    """A ``file_name,text`` manifest (absolute paths) that both trainers read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "text", "voice", "duration"])
        writer.writerows([os.path.abspath(c.path), c.text, c.voice, f"{c.seconds:.3f}"] for c in clips)
    return str(path)


def quick_overrides(config: StudyConfig) -> tuple[list[str], list[str]]:
    """Extra pre-training and fine-tuning options of the smoke-test mode."""
    if not config.quick:
        return [], []
    tiny = ["--config_name", "tiny", "--config_overrides", json.dumps({"feat_extract_norm": "layer"})]
    pretrain = [*tiny, "--max_steps", "2", "--max_seconds", "1.0", "--min_seconds", "0.5", "--eval_steps", "2"]
    finetune = ["--max_steps", "3", "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1"]
    return pretrain + ["--save_steps", "2", "--per_device_train_batch_size", "4"], finetune


def pretrain(config: StudyConfig, train_manifest: str, unlabeled: Sequence[str], out: Path) -> str:
    """Pre-train on the training voices' audio (+ ``unlabeled`` manifests); returns the model folder."""
    extra, _ = quick_overrides(config)
    argv = [
        config.pretrain_recipe,
        "--train_source",
        train_manifest,
        "--eval_source",
        config.dev_data,
        "--output_dir",
        str(out),
        "--max_train_minutes",
        str(config.pretrain_minutes),
        *(_step_options(config.pretrain_steps) if config.pretrain_steps else []),
        "--seed",
        str(config.seed),
        *(["--extra_train_sources", *unlabeled] if unlabeled else []),
        *extra,
    ]
    run_pretraining(*parse_pretrain_args(argv))
    return str(out)


def _step_options(steps: int) -> list[str]:
    """``--max_steps`` with four evaluations and eight checkpoints over the run."""
    return ["--max_steps", str(steps), "--eval_steps", str(max(steps // 4, 1)), "--save_steps", str(max(steps // 8, 1))]


def build_tokenizer(config: StudyConfig, clips: Sequence[PoolClip], out: Path) -> str:
    """One vocabulary for every run (built from the whole training pool), saved to ``out``."""
    processor, _ = choose_processor(config_from_name(config.model_preset), [c.text for c in clips], TextNormalizer())
    processor.save_pretrained(str(out))
    return str(out)


def finetune(config: StudyConfig, manifest: str, init: str, pretrained: str, tokenizer: str, out: Path) -> str:
    """One fine-tuning run of the shared recipe; returns the model folder."""
    _, extra = quick_overrides(config)
    if init == "pretrained":
        source = ["--model_name_or_path", pretrained, "--config_name", ""]
    else:
        source = ["--model_name_or_path", ""]
    if init == "random":
        source += ["--config_name", "tiny" if config.quick else config.model_preset]
        source += ["--config_overrides", json.dumps({"feat_extract_norm": "layer"})] if config.quick else []
    argv = [
        config.finetune_recipe,
        *source,
        "--train_data",
        manifest,
        "--eval_data",
        config.dev_data,
        "--test_data",
        "",
        "--tokenizer_name_or_path",
        tokenizer,
        "--output_dir",
        str(out),
        "--max_train_minutes",
        str(config.finetune_minutes),
        *(["--max_steps", str(config.finetune_steps)] if config.finetune_steps else []),
        "--seed",
        str(config.seed),
        *extra,
    ]
    run_finetuning(*parse_finetune_args(argv))
    return str(out)


QUICK_BEAM_WIDTH = 4
"""Beams per frame in ``quick`` mode: a barely trained tiny model's flat logits keep every beam alive, and
pyctcdecode spent 3.5 s per clip at the default 100 (90% of the quick study's time)."""


def score(
    model_dir: str, lm: str, dev: str, unseen: Sequence[PoolClip], seed: int, quick: bool = False
) -> dict[str, Any]:
    """Greedy and LM WER/CER on dev (alpha/beta tuned on a third of it) and on the unseen voices;
    ``quick``: a narrow beam and a 2 x 2 grid (a smoke test of the scoring, not a measurement)."""
    beam = BeamSettings(beam_width=QUICK_BEAM_WIDTH) if quick else None  # per call: the decoder stays as loaded
    transcriber = Transcriber.from_pretrained(model_dir, lm_path=lm, beam=beam)
    search = AlphaBetaSearch((0.0, 0.25, 0.5, 1.0), (0.0, 1.0, 2.0), seed=seed, beam_width=16)
    if quick:
        search = AlphaBetaSearch((0.0, 0.5), (0.0, 1.0), seed=seed, beam_width=QUICK_BEAM_WIDTH)
    dev_utts = read_audiofolder(dev)
    dev_report = evaluate_ctc(transcriber, dev_utts, tuning=LMTuning(search), progress=False)
    unseen_report = evaluate_ctc(transcriber, as_utterances(unseen), progress=False)  # dev-tuned alpha/beta
    return {"dev": dev_report.summary(), "unseen_voices": unseen_report.summary()}


def as_utterances(clips: Sequence[PoolClip]) -> list[Utterance]:
    return [Utterance(id=Path(c.path).stem, text=c.text, path=c.path) for c in clips]


def run_study(config: StudyConfig) -> dict[str, Any]:
    """Run (or, where a finished run is found, reuse) every step; returns and writes ``results.json``."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pool = read_pool(config.pool)
    train, unseen = hold_out_voices(pool, config.heldout_voices, config.seed)
    if config.unseen_utterances > 0:
        unseen += read_pool(generate_unseen_voices(config, out / "unseen"))
    manifests = {
        name: write_manifest(out / "labels" / f"{name}.csv", clips)
        for name, clips in label_subsets(train, config.label_minutes, config.seed).items()
    }
    write_manifest(out / "labels" / "unseen_voices.csv", unseen)
    unlabeled = unlabeled_clips(config, out / "unlabeled", pool, {c.voice for c in unseen})
    unlabeled_manifests = [write_manifest(out / "labels" / "unlabeled.csv", unlabeled)] if unlabeled else []
    pretrained = config.pretrain_from or str(out / "pretrain")
    if config.pretrain_from is None and not _finished(out / "pretrain"):
        pretrain(config, manifests[ALL_LABELS], unlabeled_manifests, out / "pretrain")
    tokenizer = build_tokenizer(config, train, out / "tokenizer")
    lm = out / f"lm{config.lm_order}.arpa"
    if not lm.is_file():
        build_arpa(config.lm_corpus, lm, order=config.lm_order, prune=(0, 0, 1, 1)[: config.lm_order], progress=False)
    results: dict[str, Any] = {
        "config": asdict(config),
        "voices_held_out": sorted({c.voice for c in unseen}),
        "hours": {
            **_hours(pool, train, unseen, manifests),
            "unlabeled_extra": sum(c.seconds for c in unlabeled) / 3600,
        },
        "runs": {},
    }
    for name, manifest in manifests.items():
        for init in INITS:
            run_dir = out / f"{name}-{init}"
            if not _finished(run_dir):
                finetune(config, manifest, init, pretrained, tokenizer, run_dir)
            results["runs"][f"{name}/{init}"] = _scored(
                run_dir, lambda d: score(d, str(lm), config.dev_data, unseen, config.seed, config.quick)
            )
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "table.md").write_text(results_table(results), encoding="utf-8")
    plot_results(results, out / "low_label.png")
    return results


def generate_unseen_voices(config: StudyConfig, out: Path) -> str:
    """The dev sentences (``unseen_utterances`` of them) spoken by :data:`UNSEEN_VOICES`, once."""
    if not (out / "metadata.csv").is_file():
        sentences = sorted({u.text or "" for u in read_audiofolder(config.dev_data)} - {""})
        sentences = random.Random(config.seed).sample(sentences, min(config.unseen_utterances, len(sentences)))
        items = plan_corpus(
            sentences, engine_weights={"espeak": 0.5, "flite": 0.5}, voices=UNSEEN_VOICES, seed=config.seed
        )
        synthesize_corpus(items, out, num_workers=config.synth_workers, seed=config.seed)
    return str(out)


def unlabeled_clips(config: StudyConfig, out: Path, pool: Sequence[PoolClip], unseen: set[str]) -> list[PoolClip]:
    """Generated speech (``unlabeled_hours``, made once) and ``unlabeled`` folders, without unseen voices."""
    folders = list(config.unlabeled)
    if config.unlabeled_hours > 0:
        if not (out / "metadata.csv").is_file():
            with open(config.lm_corpus, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            exclude = [c.text for c in pool] + [u.text or "" for u in read_audiofolder(config.dev_data)]
            count = count_for_hours(lines, config.unlabeled_hours, seed=config.seed)
            sentences = pick_sentences(lines, count, exclude=exclude, seed=config.seed)
            synthesize_corpus(plan_corpus(sentences, seed=config.seed), out, num_workers=config.synth_workers)
        folders.append(str(out))
    clips = [clip for folder in folders for clip in read_pool(folder)]
    kept = [clip for clip in clips if clip.voice not in unseen]
    if len(kept) < len(clips):
        logger.info("unlabeled audio: %d clips of unseen voices removed", len(clips) - len(kept))
    return kept


def _scored(run_dir: Path, scorer: Any) -> dict[str, Any]:
    """The run's scores, computed once and kept next to it (``study_scores.json``) for reruns."""
    path = run_dir / SCORES_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    scores = scorer(str(run_dir))
    path.write_text(json.dumps(scores, indent=2), encoding="utf-8")
    return scores


def _finished(folder: Path) -> bool:
    """Whether ``folder`` holds a finished model (a rerun of the study then reuses it)."""
    finished = any((folder / name).is_file() for name in ("all_results.json", "train_results.json"))
    if finished and (folder / "model.safetensors").is_file():
        logger.info("reusing %s", folder)
        return True
    return False


def _hours(
    pool: Sequence[PoolClip], train: Sequence[PoolClip], unseen: Sequence[PoolClip], manifests: dict[str, str]
) -> dict[str, float]:
    hours = {
        "pool": sum(c.seconds for c in pool) / 3600,
        "training_voices": sum(c.seconds for c in train) / 3600,
        "unseen_voices": sum(c.seconds for c in unseen) / 3600,
    }
    for name, manifest in manifests.items():
        with open(manifest, encoding="utf-8", newline="") as handle:
            hours[f"labels_{name}"] = sum(float(r["duration"]) for r in csv.DictReader(handle)) / 3600
    return hours


def results_table(results: dict[str, Any]) -> str:
    """Markdown laid out like the paper's Table 1: rows labels x init x LM, WER and CER per score set."""
    lines = [
        "| labels | init | LM | dev WER | dev CER | unseen-voice WER | unseen-voice CER |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for key, run in results["runs"].items():
        name, init = key.split("/")
        for lm, prefix in (("none", "greedy"), ("4-gram", "lm")):
            dev, unseen = run["dev"], run["unseen_voices"]
            lines.append(
                f"| {name} | {init} | {lm} | {dev[f'{prefix}_wer']:.3f} | {dev[f'{prefix}_cer']:.3f} "
                f"| {unseen[f'{prefix}_wer']:.3f} | {unseen[f'{prefix}_cer']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def plot_results(results: dict[str, Any], path: str | os.PathLike) -> str:
    """WER (top) and CER (bottom) against labelled hours, pre-trained vs random init, greedy and LM, for both
    score sets; the x ticks are the subsets' sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(*key.split("/"), scores) for key, scores in results["runs"].items()]  # (labels, init, scores)
    hours = {labels: results["hours"][f"labels_{labels}"] for labels, _, _ in runs}
    colors = {"pretrained": "tab:blue", "random": "tab:red"}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, sharey="row", squeeze=False)
    for row, metric in enumerate(("wer", "cer")):
        for ax, score_set in zip(axes[row], ("dev", "unseen_voices")):
            for init in INITS:
                for prefix, style in (("greedy", "o--"), ("lm", "s-")):
                    points = sorted(
                        (hours[labels], scores[score_set][f"{prefix}_{metric}"])
                        for labels, run_init, scores in runs
                        if run_init == init
                    )
                    label = f"{init}, {'4-gram LM' if prefix == 'lm' else 'greedy'}"
                    ax.plot(*zip(*points), style, color=colors.get(init), label=label)
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(score_set.replace("_", " "))
        axes[row][0].set_ylabel(metric.upper())
    ticks = sorted(hours.items(), key=lambda item: item[1])
    for ax in axes[1]:
        ax.set_xticks([h for _, h in ticks], [f"{labels}\n{h:.2f} h" for labels, h in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled audio (hours, log scale)")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
