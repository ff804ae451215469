"""Turning CTC logits into text: greedy and n-gram beam-search decoding, LM building.

- :mod:`~hf_w2v2.decoding.alphabet`: the CTC labels of a tokenizer, in id order.
- :mod:`~hf_w2v2.decoding.greedy`: best-path decoding with character and word times (the one greedy decoder).
- :mod:`~hf_w2v2.decoding.ngram` / :mod:`~hf_w2v2.decoding.arpa`: modified Kneser-Ney
  n-gram LMs, read and written as ARPA.
- :mod:`~hf_w2v2.decoding.beam`: beam search with a KenLM model (pyctcdecode), saved
  with the model.
- :mod:`~hf_w2v2.decoding.tuning`: ``alpha``/``beta`` search on a dev set.
- :mod:`~hf_w2v2.decoding.formats`: txt / JSON / SubRip output.

Audio never enters here (that is :mod:`hf_w2v2.inference`). Names are imported on first use;
pyctcdecode and kenlm (optional, ``hf_w2v2[lm]``) only when a beam search is built.
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "CTCAlphabet": "hf_w2v2.decoding.alphabet",
    "build_arpa": "hf_w2v2.decoding.arpa",
    "read_arpa": "hf_w2v2.decoding.arpa",
    "write_arpa": "hf_w2v2.decoding.arpa",
    "BeamSearchDecoder": "hf_w2v2.decoding.beam",
    "collapse_ctc": "hf_w2v2.decoding.greedy",
    "greedy_decode": "hf_w2v2.decoding.greedy",
    "NgramModel": "hf_w2v2.decoding.ngram",
    "count_ngrams": "hf_w2v2.decoding.ngram",
    "estimate_kneser_ney": "hf_w2v2.decoding.ngram",
    "SECONDS_PER_FRAME": "hf_w2v2.decoding.outputs",
    "Span": "hf_w2v2.decoding.outputs",
    "Transcription": "hf_w2v2.decoding.outputs",
    "AlphaBetaSearch": "hf_w2v2.decoding.tuning",
    "TuningResult": "hf_w2v2.decoding.tuning",
    "tune_alpha_beta": "hf_w2v2.decoding.tuning",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
