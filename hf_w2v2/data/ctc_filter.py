"""Which utterances a CTC training set keeps: one :class:`CTCFilter`, shared by every way of building one.

The eager (:func:`hf_w2v2.data.prepare.prepare_ctc_dataset`), lazy
(:func:`hf_w2v2.data.lazy.prepare_lazy_ctc_dataset`) and streamed (:func:`hf_w2v2.data.stream.ctc_stream`)
builders take the same filter, so a corpus is normalised and filtered the same way whichever loading a
run uses; each counts what it drops in a :class:`~hf_w2v2.data.prepare.FilterReport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hf_w2v2.models.lengths import receptive_field
from hf_w2v2.text.normalize import TextNormalizer


class HasConvGeometry(Protocol):
    """A model config's feature-encoder geometry (``Wav2Vec2Config`` has it)."""

    conv_kernel: Sequence[int]
    conv_stride: Sequence[int]


@dataclass(frozen=True)
class CTCFilter:
    """How transcripts are normalised and which utterances are kept (the defaults keep all that can train)."""

    normalizer: TextNormalizer = field(default_factory=TextNormalizer)
    """The transcript normaliser the vocabulary was built with."""
    min_duration: float = 0.0
    """Seconds; shorter clips are dropped (the encoder's receptive field, 400 samples, is always the floor)."""
    max_duration: float | None = None
    """Seconds; longer clips are dropped, checked from the file header before decoding (``None``: no limit)."""
    drop_oov: bool = False
    """Drop utterances with characters outside the vocabulary (default: keep them, the characters become
    ``[UNK]``); they are counted either way."""

    def sample_bounds(self, sampling_rate: int, config: HasConvGeometry) -> tuple[int, int | None]:
        """``(min_samples, max_samples)`` a training clip must stay within at ``sampling_rate`` (Hz): the
        encoder's receptive field or ``min_duration``, whichever is longer, and ``max_duration`` (None: no limit)."""
        min_samples = max(
            receptive_field(config.conv_kernel, config.conv_stride), round(self.min_duration * sampling_rate)
        )
        return min_samples, None if self.max_duration is None else round(self.max_duration * sampling_rate)
