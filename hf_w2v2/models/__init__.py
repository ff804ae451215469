"""The wav2vec 2.0 model: config, blocks, heads, outputs and checkpoint interop.

Nothing here knows about training: the Trainer recipes live in :mod:`hf_w2v2.pretrain` and
:mod:`hf_w2v2.finetune`. One concept per file:

- :mod:`.configuration`: :class:`Wav2Vec2Config` and the presets (``base``, ``large_lv60``, ``small``, ``tiny``);
- blocks: :mod:`.feature_encoder`, :mod:`.feature_projection`, :mod:`.position_encoder`,
  :mod:`.transformer`, :mod:`.quantizer`, :mod:`.adapters` (conv adapter, MMS language adapters),
  :mod:`.linear_kernel` (the linear layers' CPU inference matmul, MKL or oneDNN, measured per machine),
  :mod:`.kernel_choice` (one measured-or-forced kernel choice, shared by the conv and linear kernels);
- pure maths: :mod:`.lengths`, :mod:`.masking`, :mod:`.negatives`, :mod:`.losses`
  (used by the model's own forward, so they live here, below the trainers);
- heads: :mod:`.modeling` (encoder), :mod:`.ctc`, :mod:`.classification`, :mod:`.xvector`, :mod:`.pretraining`;
- :mod:`.outputs`, :mod:`.validation`, :mod:`.interop` (fairseq checkpoints).
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "Wav2Vec2Config": "hf_w2v2.models.configuration",
    "Wav2Vec2Model": "hf_w2v2.models.modeling",
    "Wav2Vec2PreTrainedModel": "hf_w2v2.models.modeling",
    "Wav2Vec2ForPreTraining": "hf_w2v2.models.pretraining",
    "Wav2Vec2ForCTC": "hf_w2v2.models.ctc",
    "Wav2Vec2ForSequenceClassification": "hf_w2v2.models.classification",
    "Wav2Vec2ForAudioFrameClassification": "hf_w2v2.models.classification",
    "Wav2Vec2ForXVector": "hf_w2v2.models.xvector",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
