"""Turning CTC logits into text: greedy and n-gram beam-search decoding, LM building, long audio.

- :mod:`~hf_w2v2.decoding.alphabet`: the CTC labels of a tokenizer, in id order.
- :mod:`~hf_w2v2.decoding.greedy`: best-path decoding with character and word times.
- :mod:`~hf_w2v2.decoding.ngram` / :mod:`~hf_w2v2.decoding.arpa`: modified Kneser-Ney
  n-gram LMs, read and written as ARPA.
- :mod:`~hf_w2v2.decoding.beam`: beam search with a KenLM model (pyctcdecode), saved
  with the model.
- :mod:`~hf_w2v2.decoding.tuning`: ``alpha``/``beta`` search on a dev set.
- :mod:`~hf_w2v2.decoding.chunked`: long recordings in overlapping windows.

Importing this package does not import pyctcdecode or kenlm (optional, ``hf_w2v2[lm]``).
"""

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.arpa import build_arpa, read_arpa, write_arpa
from hf_w2v2.decoding.beam import BeamSearchDecoder
from hf_w2v2.decoding.chunked import Chunk, chunked_logits, plan_chunks
from hf_w2v2.decoding.greedy import collapse_ctc, greedy_decode
from hf_w2v2.decoding.ngram import NgramModel, count_ngrams, estimate_kneser_ney
from hf_w2v2.decoding.outputs import SECONDS_PER_FRAME, Span, Transcription
from hf_w2v2.decoding.tuning import TuningResult, tune_alpha_beta
from hf_w2v2.metrics import char_error_rate, word_error_rate

__all__ = [
    "SECONDS_PER_FRAME",
    "BeamSearchDecoder",
    "CTCAlphabet",
    "Chunk",
    "NgramModel",
    "Span",
    "Transcription",
    "TuningResult",
    "build_arpa",
    "char_error_rate",
    "chunked_logits",
    "collapse_ctc",
    "count_ngrams",
    "estimate_kneser_ney",
    "greedy_decode",
    "plan_chunks",
    "read_arpa",
    "tune_alpha_beta",
    "word_error_rate",
    "write_arpa",
]
