"""Build the ``Wav2Vec2Processor`` (feature extractor + CTC tokenizer) that matches a model config.

The model family decides how audio is fed to it:

* ``feat_extract_norm == "group"`` (wav2vec2-base, -large LV-60 of the paper): group norm in
  the first conv layer normalises over time *including padding*, so batches are padded with
  zeros and **no attention mask** is passed (passing one changes the outputs relative to
  pre-training); ``return_attention_mask=False``.
* ``feat_extract_norm == "layer"`` (large-lv60, XLS-R): per-frame layer norm, the model
  masks padding itself; ``return_attention_mask=True``.

Both normalise each utterance to zero mean and unit variance (``do_normalize=True``) at
16 kHz. The processor is saved next to the model with ``save_pretrained`` and reloaded with
``transformers.AutoProcessor.from_pretrained``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.text.vocab import build_tokenizer


class HasFeatExtractNorm(Protocol):
    """Any model config with the wav2vec 2.0 ``feat_extract_norm`` field."""

    feat_extract_norm: str


def uses_attention_mask(config: HasFeatExtractNorm) -> bool:
    """Whether a model with ``config`` takes an attention mask (only layer-norm feature encoders)."""
    norm = getattr(config, "feat_extract_norm", None)
    if norm not in ("group", "layer"):
        raise ValueError(f"config.feat_extract_norm must be 'group' or 'layer', got {norm!r}")
    return norm == "layer"


def build_feature_extractor(
    config: HasFeatExtractNorm, sampling_rate: int = TARGET_SAMPLING_RATE
) -> Wav2Vec2FeatureExtractor:
    """Raw-waveform feature extractor for ``config``: zero-padding, per-utterance normalisation."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=sampling_rate,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=uses_attention_mask(config),
    )


def build_processor(config: HasFeatExtractNorm, tokenizer: Wav2Vec2CTCTokenizer) -> Wav2Vec2Processor:
    """Wrap ``tokenizer`` and the feature extractor for ``config`` in a ``Wav2Vec2Processor``."""
    return Wav2Vec2Processor(feature_extractor=build_feature_extractor(config), tokenizer=tokenizer)


def build_processor_from_texts(
    config: HasFeatExtractNorm,
    texts: Iterable[str],
    output_dir: str | os.PathLike,
    normalizer: TextNormalizer | None = None,
    min_count: int = 1,
) -> Wav2Vec2Processor:
    """Normalise raw ``texts``, build the vocabulary, and save the processor to ``output_dir``.

    ``output_dir`` then holds ``vocab.json``, ``tokenizer_config.json`` and
    ``processor_config.json``: pass the model's output folder so that
    ``AutoProcessor.from_pretrained(output_dir)`` finds them next to the weights.
    """
    normalizer = normalizer or TextNormalizer()
    tokenizer = build_tokenizer((normalizer(text) for text in texts), output_dir, min_count=min_count)
    processor = build_processor(config, tokenizer)
    processor.save_pretrained(os.fspath(output_dir))
    return processor
