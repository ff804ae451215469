"""Self-supervised pre-training with the transformers Trainer: arguments, data, collator, trainer, run.

Entry point: :func:`run_pretraining` (used by ``examples/pretrain.py``), the mirror of
:mod:`hf_w2v2.finetune`. The maths it trains (span masks, distractors, contrastive and
diversity losses) lives with the model in :mod:`hf_w2v2.models`, which draws them in its
own forward; this package adds the temperature schedule, batching and the Trainer.
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "ModelArguments": "hf_w2v2.pretrain.arguments",
    "ScheduleArguments": "hf_w2v2.pretrain.arguments",
    "DataArguments": "hf_w2v2.pretrain.arguments",
    "parse_pretrain_args": "hf_w2v2.pretrain.arguments",
    "DataCollatorForPreTraining": "hf_w2v2.pretrain.collator",
    "UnlabeledAudioDataset": "hf_w2v2.pretrain.data",
    "scan_audio": "hf_w2v2.pretrain.data",
    "GumbelSchedule": "hf_w2v2.pretrain.temperature",
    "GumbelTemperatureCallback": "hf_w2v2.pretrain.temperature",
    "gumbel_temperature": "hf_w2v2.pretrain.temperature",
    "PreTrainingTrainer": "hf_w2v2.pretrain.trainer",
    "run_pretraining": "hf_w2v2.pretrain.run",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
