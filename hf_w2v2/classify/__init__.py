"""Utterance classification, speaker embeddings (x-vectors, verification) and frame classification
with the transformers Trainer: arguments, data, model, metrics, verification, trainer, run.

Entry point: :func:`run_classification` (used by ``examples/finetune_classification.py``), the
mirror of :mod:`hf_w2v2.finetune` for labels instead of transcripts.
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "ClassifyDataArguments": "hf_w2v2.classify.arguments",
    "parse_classify_args": "hf_w2v2.classify.arguments",
    "read_labeled": "hf_w2v2.classify.data",
    "ClassificationMetrics": "hf_w2v2.classify.metrics",
    "build_classifier": "hf_w2v2.classify.model",
    "ClassificationTrainer": "hf_w2v2.classify.trainer",
    "run_classification": "hf_w2v2.classify.run",
    "equal_error_rate": "hf_w2v2.classify.verification",
    "min_dcf": "hf_w2v2.classify.verification",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
