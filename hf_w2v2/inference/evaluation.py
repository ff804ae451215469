"""Scoring a CTC model on a labelled set: greedy versus n-gram beam search, WER and CER.

The model runs once per utterance; both decoders read the same logits. When ``alpha`` and
``beta`` are tuned (an :class:`LMTuning`), they are tuned on a held-out part of the set
(``fraction``, drawn with the search's ``seed``) and the WERs are reported on the rest, so the
LM gain is not measured on the data it was tuned on.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from hf_w2v2.data.audio import load_audio
from hf_w2v2.data.sources import Utterance
from hf_w2v2.decoding.beam import BeamSearchDecoder, BeamSettings
from hf_w2v2.decoding.greedy import greedy_decode
from hf_w2v2.decoding.tuning import AlphaBetaSearch, tune_alpha_beta
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.text.error_rates import char_error_rate, word_error_rate
from hf_w2v2.text.normalize import TextNormalizer


@dataclass(frozen=True)
class LMTuning:
    """Tune the LM's ``alpha``/``beta`` on a held-out part of the set, then score the rest with the best pair."""

    search: AlphaBetaSearch = field(default_factory=AlphaBetaSearch)
    """The pairs tried and the beams used while trying (its ``seed`` also draws the held-out part)."""
    fraction: float = 0.33
    """Share of the utterances held out to tune on, in (0, 1); they are left out of the reported rates."""


@dataclass
class UtteranceResult:
    """Per-utterance transcripts (``beam`` is ``None`` without an LM decoder)."""

    id: str
    path: str
    reference: str
    greedy: str
    beam: str | None = None
    tuning_set: bool = False


@dataclass
class EvaluationReport:
    """Corpus error rates on the evaluation utterances, with how they were obtained."""

    num_utterances: int
    greedy_wer: float
    greedy_cer: float
    lm_wer: float | None = None
    lm_cer: float | None = None
    alpha: float | None = None
    beta: float | None = None
    beam_width: int | None = None
    beam_utterances_per_s: float | None = None
    tuning: dict | None = None
    rows: list[UtteranceResult] = field(default_factory=list)

    @property
    def relative_wer_reduction(self) -> float | None:
        """``1 - lm_wer / greedy_wer`` (0.25 means the LM removed a quarter of the word errors)."""
        if self.lm_wer is None or self.greedy_wer == 0:
            return None
        return 1.0 - self.lm_wer / self.greedy_wer

    def summary(self) -> dict:
        """Everything but the rows, JSON-ready."""
        out = {k: v for k, v in asdict(self).items() if k != "rows"}
        out["relative_wer_reduction"] = self.relative_wer_reduction
        return out

    def write(self, directory: str | os.PathLike) -> None:
        """``summary.json`` and ``utterances.jsonl`` (one line per utterance) into ``directory``."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "summary.json"), "w", encoding="utf-8") as out:
            json.dump(self.summary(), out, indent=2)
        with open(os.path.join(directory, "utterances.jsonl"), "w", encoding="utf-8") as out:
            out.writelines(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in self.rows)


def compute_logits(
    transcriber: Transcriber, utterances: Sequence[Utterance], progress: bool = True
) -> list[torch.Tensor]:
    """``(F, V)`` logits of each utterance (read from its file)."""
    logits = []
    for utt in tqdm(utterances, desc="acoustic model", unit=" utt", disable=not progress):
        if utt.path is None:
            raise ValueError(f"utterance {utt.id} has no audio file path; evaluation reads audio from files")
        logits.append(transcriber.logits(load_audio(utt.path, transcriber.sampling_rate)))
    return logits


def split_for_tuning(num: int, tune_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(tune, evaluate)``: a seeded random ``tune_fraction`` of ``range(num)`` and the rest."""
    if not 0.0 < tune_fraction < 1.0:
        raise ValueError(f"tune_fraction must be in (0, 1), got {tune_fraction}")
    order = list(range(num))
    random.Random(seed).shuffle(order)
    cut = max(1, min(num - 1, round(num * tune_fraction)))
    return sorted(order[:cut]), sorted(order[cut:])


def _lm_decode(
    decoder: BeamSearchDecoder, logits: list[torch.Tensor], settings: BeamSettings, num_processes: int
) -> tuple[list[str], float]:
    """Beam-search transcripts and the throughput in utterances per second."""
    start = time.perf_counter()
    texts = [t.text for t in decoder.decode_batch(logits, settings=settings, num_processes=num_processes)]
    return texts, len(logits) / (time.perf_counter() - start)


def evaluate_ctc(
    transcriber: Transcriber,
    utterances: Sequence[Utterance],
    normalizer: TextNormalizer | None = None,
    tuning: LMTuning | None = None,
    num_processes: int = 1,
    progress: bool = True,
) -> EvaluationReport:
    """WER/CER of greedy decoding and (if the transcriber has a decoder) LM beam search.

    Args:
        transcriber: model + processor, with ``transcriber.decoder`` for the LM side.
        utterances: labelled utterances with audio paths.
        normalizer: applied to references (default: upper case, punctuation removed).
        tuning: tune ``alpha``/``beta`` on a held-out part first (see module doc); ``None``: decode with the
            transcriber's beam settings as they are.
        num_processes: beam-search worker processes.
    """
    normalizer = normalizer or TextNormalizer()
    references = [normalizer(u.text or "") for u in utterances]
    logits = compute_logits(transcriber, utterances, progress=progress)
    greedy = [greedy_decode(x, transcriber.alphabet)[0].text for x in logits]
    decoder, settings = transcriber.decoder, transcriber.beam
    tune_idx: list[int] = []
    eval_idx = list(range(len(utterances)))
    report = EvaluationReport(num_utterances=0, greedy_wer=0.0, greedy_cer=0.0)
    if decoder is not None and tuning is not None:
        tune_idx, eval_idx = split_for_tuning(len(utterances), tuning.fraction, tuning.search.seed)
        tuned = tune_alpha_beta(
            decoder,
            [logits[i] for i in tune_idx],
            [references[i] for i in tune_idx],
            tuning.search,
            num_processes=num_processes,
            progress=progress,
        )
        report.tuning = tuned.to_dict()
        settings = replace(settings, alpha=tuned.alpha, beta=tuned.beta)  # the rest is decoded with the best pair
    refs = [references[i] for i in eval_idx]
    report.num_utterances = len(eval_idx)
    report.greedy_wer = word_error_rate(refs, [greedy[i] for i in eval_idx])
    report.greedy_cer = char_error_rate(refs, [greedy[i] for i in eval_idx])
    beam: dict[int, str] = {}
    if decoder is not None:
        used = decoder.resolve(settings)
        texts, report.beam_utterances_per_s = _lm_decode(decoder, [logits[i] for i in eval_idx], used, num_processes)
        beam = dict(zip(eval_idx, texts))
        report.lm_wer, report.lm_cer = word_error_rate(refs, texts), char_error_rate(refs, texts)
        report.alpha, report.beta, report.beam_width = used.alpha, used.beta, used.beam_width
    tune_set = set(tune_idx)
    report.rows = [
        UtteranceResult(u.id, u.path or "", references[i], greedy[i], beam.get(i), i in tune_set)
        for i, u in enumerate(utterances)
    ]
    return report
