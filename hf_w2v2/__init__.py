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
]
