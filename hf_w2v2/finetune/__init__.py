"""CTC fine-tuning with the transformers Trainer: arguments, data, model, metrics, card, trainer, run.

Entry point: :func:`run_finetuning` (used by ``examples/finetune_ctc.py``), the mirror of
:mod:`hf_w2v2.pretrain`. Needs the ``train`` extra (accelerate, datasets, jiwer, matplotlib, pyyaml).
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "CardArguments": "hf_w2v2.finetune.arguments",
    "DataArguments": "hf_w2v2.finetune.arguments",
    "ModelArguments": "hf_w2v2.finetune.arguments",
    "parse_finetune_args": "hf_w2v2.finetune.arguments",
    "CTCMetrics": "hf_w2v2.finetune.metrics",
    "build_ctc_model": "hf_w2v2.finetune.model",
    "run_finetuning": "hf_w2v2.finetune.run",
    "CTCTrainer": "hf_w2v2.finetune.trainer",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
