"""The wav2vec 2.0 model: config, blocks, heads, outputs and checkpoint interop.

Nothing here knows about training: the Trainer recipes live in :mod:`hf_w2v2.pretrain` and
:mod:`hf_w2v2.finetune`. One concept per file:

- :mod:`.configuration`: :class:`Wav2Vec2Config` and the presets (``base``, ``large_lv60``, ``small``, ``tiny``);
- blocks: :mod:`.feature_encoder`, :mod:`.feature_projection`, :mod:`.position_encoder`,
  :mod:`.transformer`, :mod:`.quantizer`, :mod:`.adapters` (conv adapter, MMS language adapters);
- pure maths: :mod:`.lengths`, :mod:`.masking`, :mod:`.negatives`, :mod:`.losses`
  (used by the model's own forward, so they live here, below the trainers);
- heads: :mod:`.modeling` (encoder), :mod:`.ctc`, :mod:`.classification`, :mod:`.xvector`, :mod:`.pretraining`;
- :mod:`.outputs`, :mod:`.validation`, :mod:`.interop` (fairseq checkpoints).
"""

from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForSequenceClassification
from hf_w2v2.models.configuration import Wav2Vec2Config
from hf_w2v2.models.ctc import Wav2Vec2ForCTC
from hf_w2v2.models.modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel
from hf_w2v2.models.pretraining import Wav2Vec2ForPreTraining
from hf_w2v2.models.xvector import Wav2Vec2ForXVector

__all__ = [
    "Wav2Vec2Config",
    "Wav2Vec2ForAudioFrameClassification",
    "Wav2Vec2ForCTC",
    "Wav2Vec2ForPreTraining",
    "Wav2Vec2ForSequenceClassification",
    "Wav2Vec2ForXVector",
    "Wav2Vec2Model",
    "Wav2Vec2PreTrainedModel",
]
