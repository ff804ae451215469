"""hf_w2v2: wav2vec 2.0 (Baevski et al. 2020) as Hugging Face PreTrainedModel classes.

Drop-in twins of the transformers classes of the same names: same config fields,
same state-dict keys, same forward arguments and output fields.

The package is laid out by concern, each layer importing only the ones below it:

- :mod:`hf_w2v2.models`: the model (config, blocks, heads, outputs, checkpoint interop);
- :mod:`hf_w2v2.text`: transcript normalisation, vocabularies, error rates;
- :mod:`hf_w2v2.data`: audio files, corpora, collators, the processor;
- :mod:`hf_w2v2.decoding`: CTC logits to text (greedy, n-gram beam search);
- :mod:`hf_w2v2.inference`: audio in, logits and transcripts out (long audio, evaluation);
- :mod:`hf_w2v2.training`: what both trainers share (recipes, time budget, cards, Hub);
- :mod:`hf_w2v2.pretrain` and :mod:`hf_w2v2.finetune`: the two Trainer recipes;
- :mod:`hf_w2v2.cli`: the ``hf-w2v2`` command.

Every name below is imported on first use, so ``import hf_w2v2`` (and ``hf-w2v2 --help``)
does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_w2v2.lazy import lazy_namespace

__version__ = "0.2.0"

_MODEL_CLASSES = (
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2PreTrainedModel",
    "Wav2Vec2ForPreTraining",
    "Wav2Vec2ForCTC",
    "Wav2Vec2ForSequenceClassification",
    "Wav2Vec2ForAudioFrameClassification",
    "Wav2Vec2ForXVector",
)
_LAZY = {
    **dict.fromkeys(_MODEL_CLASSES, "hf_w2v2.models"),  # the model package's own lazy namespace says where
    "build_processor": "hf_w2v2.data.processor",
    "build_processor_from_texts": "hf_w2v2.data.processor",
    "DataCollatorCTCWithPadding": "hf_w2v2.data.collator",
    "compute_span_mask": "hf_w2v2.models.masking",
    "sample_negative_indices": "hf_w2v2.models.negatives",
    "PreTrainingTrainer": "hf_w2v2.pretrain.trainer",
    "DataCollatorForPreTraining": "hf_w2v2.pretrain.collator",
    "GumbelTemperatureCallback": "hf_w2v2.pretrain.temperature",
    "gumbel_temperature": "hf_w2v2.pretrain.temperature",
    "Transcriber": "hf_w2v2.inference.transcribe",
    "align_logits": "hf_w2v2.decoding.align",
    "quantize_int8": "hf_w2v2.inference.precision",
    "export_onnx": "hf_w2v2.inference.export",
    "export_program": "hf_w2v2.inference.export",
}

if TYPE_CHECKING:
    from hf_w2v2.data.collator import DataCollatorCTCWithPadding
    from hf_w2v2.data.processor import build_processor, build_processor_from_texts
    from hf_w2v2.decoding.align import align_logits
    from hf_w2v2.inference.export import export_onnx, export_program
    from hf_w2v2.inference.precision import quantize_int8
    from hf_w2v2.inference.transcribe import Transcriber
    from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForSequenceClassification
    from hf_w2v2.models.configuration import Wav2Vec2Config
    from hf_w2v2.models.ctc import Wav2Vec2ForCTC
    from hf_w2v2.models.masking import compute_span_mask
    from hf_w2v2.models.modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel
    from hf_w2v2.models.negatives import sample_negative_indices
    from hf_w2v2.models.pretraining import Wav2Vec2ForPreTraining
    from hf_w2v2.models.xvector import Wav2Vec2ForXVector
    from hf_w2v2.pretrain.collator import DataCollatorForPreTraining
    from hf_w2v2.pretrain.temperature import GumbelTemperatureCallback, gumbel_temperature
    from hf_w2v2.pretrain.trainer import PreTrainingTrainer

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)


__all__ = [
    "__version__",
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
    "DataCollatorCTCWithPadding",
    "compute_span_mask",
    "sample_negative_indices",
    "PreTrainingTrainer",
    "DataCollatorForPreTraining",
    "GumbelTemperatureCallback",
    "gumbel_temperature",
    "Transcriber",
    "align_logits",
    "quantize_int8",
    "export_onnx",
    "export_program",
]
