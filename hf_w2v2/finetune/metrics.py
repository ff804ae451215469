"""WER / CER for the Trainer, computed offline with jiwer.

Shape legend: B batch, F frames, V vocabulary, N evaluation items, U label length.

``evaluate.load("wer")`` downloads its script from the Hub; jiwer is what it wraps, so it
is called directly. :func:`hf_w2v2.training.trainer.argmax_logits` runs in ``preprocess_logits_for_metrics`` so
evaluation keeps (N, F) ids instead of (N, F, V) logits. Padded frames are cut with the
item's true length (known from the eval dataset, which the Trainer reads in order)
before the greedy CTC collapse, so padding cannot add characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import EvalPrediction, Wav2Vec2CTCTokenizer
from transformers.trainer_utils import PredictionOutput

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.greedy import decode_ids
from hf_w2v2.models.lengths import conv_output_length
from hf_w2v2.models.losses import LABEL_PAD
from hf_w2v2.text.error_rates import error_rates


def decode_predictions(
    pred_ids: np.ndarray, tokenizer: Wav2Vec2CTCTokenizer, frame_counts: Sequence[int] | None = None
) -> list[str]:
    """Greedy CTC transcripts of (N, F) ids, trimmed to each item's frames, by the one greedy decoder
    (:func:`hf_w2v2.decoding.greedy.decode_ids`) that evaluation and transcription use too."""
    alphabet = CTCAlphabet.from_tokenizer(tokenizer)
    texts = []
    for row, ids in enumerate(pred_ids):
        ids = ids[ids != LABEL_PAD] if frame_counts is None else ids[: frame_counts[row]]
        texts.append(decode_ids(torch.from_numpy(np.ascontiguousarray(ids)), alphabet).text)
    return texts


def decode_labels(label_ids: np.ndarray, tokenizer: Wav2Vec2CTCTokenizer) -> list[str]:
    """Reference transcripts of (N, U) label ids padded with -100 (no repeat merging)."""
    return [tokenizer.decode(row[row != LABEL_PAD].tolist(), group_tokens=False) for row in label_ids]


def frame_counts_from_samples(
    sample_lengths: Sequence[int], kernels: Sequence[int], strides: Sequence[int]
) -> list[int]:
    """Frames of each item from its length in samples."""
    return [int(conv_output_length(int(n), kernels, strides)) for n in sample_lengths]


@dataclass(frozen=True)
class CTCMetrics:
    """``compute_metrics`` for one eval dataset: WER/CER; :meth:`transcripts` gives the predictions file's lines."""

    tokenizer: Wav2Vec2CTCTokenizer
    frame_counts: Sequence[int] | None = None

    def transcripts(self, prediction: EvalPrediction | PredictionOutput) -> tuple[list[str], list[str]]:
        """(references, hypotheses) of an evaluation's (N, F) argmax ids and (N, U) labels, in dataset order."""
        ids = np.asarray(prediction.predictions)
        counts = self.frame_counts if self.frame_counts is not None and len(self.frame_counts) == len(ids) else None
        return decode_labels(np.asarray(prediction.label_ids), self.tokenizer), decode_predictions(
            ids, self.tokenizer, counts
        )

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        references, hypotheses = self.transcripts(prediction)
        rates = error_rates(references, hypotheses)
        empty = sum(not text.strip() for text in hypotheses)  # all-blank CTC output (health monitor)
        return {**rates, "blank_output_fraction": empty / max(len(hypotheses), 1)}
