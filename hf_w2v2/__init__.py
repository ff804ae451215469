"""hf_w2v2: wav2vec 2.0 (Baevski et al. 2020) as Hugging Face PreTrainedModel classes.

Drop-in twins of the transformers classes of the same names: same config fields,
same state-dict keys, same forward arguments and output fields.
"""

from .classification import Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForSequenceClassification
from .configuration import Wav2Vec2Config
from .ctc import Wav2Vec2ForCTC
from .modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel
from .pretraining import Wav2Vec2ForPreTraining
from .processor import build_processor, build_processor_from_texts
from .xvector import Wav2Vec2ForXVector

__version__ = "0.1.0"

# Training helpers import the Trainer stack; load them on first use to keep `import hf_w2v2` light.
_LAZY = {
    "PreTrainingTrainer": "hf_w2v2.pretraining_trainer",
    "DataCollatorForPreTraining": "hf_w2v2.pretraining_collator",
    "GumbelTemperatureCallback": "hf_w2v2.temperature",
    "gumbel_temperature": "hf_w2v2.temperature",
    "compute_span_mask": "hf_w2v2.masking",
    "sample_negative_indices": "hf_w2v2.negatives",
    "DataCollatorCTCWithPadding": "hf_w2v2.data.collator",
    "Transcriber": "hf_w2v2.transcribe",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_w2v2' has no attribute {name!r}")


__all__ = [
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2PreTrainedModel",
    "Wav2Vec2ForPreTraining",
    "Wav2Vec2ForCTC",
    "Wav2Vec2ForSequenceClassification",
    "Wav2Vec2ForAudioFrameClassification",
    "Wav2Vec2ForXVector",
    "build_processor",
    "build_processor_from_texts",
    *_LAZY,
]
