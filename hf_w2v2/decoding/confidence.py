"""Per-word confidence from the CTC posteriors: the one definition, used by offline transcription
(``hf-w2v2 transcribe`` JSON, ``POST /v1/transcribe``) and by streaming.

Shape legend: F frames, V vocab.

A word spans frames ``[start_frame, end_frame)`` (its first to its last character, as the greedy
decoder and the beam search report it). Each of its characters is emitted at least once inside that
span, so the character's confidence is the highest posterior its label reaches there, and the word's
is the mean over its characters: 1.0 when every character was certain, near ``1/V`` for noise. Only
the frame span and the text are used, so beam-search words (which carry no character spans) get the
same measure as greedy ones.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.outputs import Span, Transcription


def word_confidence(probs: torch.Tensor, word: Span, alphabet: CTCAlphabet) -> float:
    """Confidence in [0, 1] of ``word`` given ``probs`` (F, V) softmax posteriors of the same recording.

    Characters the alphabet lacks (in either case) count with the unknown token's posterior, or as 0.
    """
    index = {label: i for i, label in enumerate(alphabet.labels) if i != alphabet.blank_id}
    window = probs[word.start_frame : max(word.end_frame, word.start_frame + 1)]  # (F_word, V)
    if window.shape[0] == 0 or not word.text:
        return 0.0
    peaks = window.max(dim=0).values  # (V,) best posterior of each label inside the word
    scores = []
    for char in word.text:
        found = index.get(char, index.get(char.upper(), index.get(char.lower(), alphabet.unk_id)))
        scores.append(0.0 if found is None else float(peaks[found]))
    return min(1.0, max(0.0, sum(scores) / len(scores)))


def with_confidences(transcription: Transcription, logits: torch.Tensor, alphabet: CTCAlphabet) -> Transcription:
    """``transcription`` of ``logits`` (F, V) with each word's :func:`word_confidence` filled in."""
    if logits.dim() != 2 or logits.shape[-1] != len(alphabet):
        raise ValueError(f"logits must be (frames, {len(alphabet)}), got shape {tuple(logits.shape)}")
    probs = torch.softmax(logits.float(), dim=-1)  # (F, V)
    words = [replace(w, confidence=round(word_confidence(probs, w, alphabet), 4)) for w in transcription.words]
    return replace(transcription, words=words)
