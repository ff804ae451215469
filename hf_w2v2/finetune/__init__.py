"""CTC fine-tuning with the transformers Trainer: arguments, data, model, metrics, card, curves.

Entry point: :func:`run_finetuning` (used by ``examples/finetune_ctc.py``). Needs the
``train`` extra (accelerate, datasets, jiwer, matplotlib, pyyaml).
"""

from hf_w2v2.finetune.arguments import CardArguments, DataArguments, ModelArguments, parse_finetune_args
from hf_w2v2.finetune.metrics import CTCMetrics, argmax_logits, error_rates
from hf_w2v2.finetune.model import build_ctc_model
from hf_w2v2.finetune.run import FinetuneResult, run_finetuning
from hf_w2v2.finetune.trainer import CTCTrainer, TimeBudgetCallback

__all__ = [
    "CTCMetrics",
    "CTCTrainer",
    "CardArguments",
    "DataArguments",
    "FinetuneResult",
    "ModelArguments",
    "TimeBudgetCallback",
    "argmax_logits",
    "build_ctc_model",
    "error_rates",
    "parse_finetune_args",
    "run_finetuning",
]
