"""Batch padding for CTC fine-tuning with the transformers ``Trainer``.

Shape legend: B batch, T samples, L label tokens.

Audio is right-padded with the feature extractor's padding value (0.0). An
``attention_mask`` is returned only for models that use one (layer-norm feature encoders,
``feat_extract_norm == "layer"``): group-norm models such as wav2vec2-base were pre-trained
on zero-padded batches without a mask. Labels are right-padded with -100, which CTC heads
(``Wav2Vec2ForCTC``) treat as padding: only ``labels >= 0`` are targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import DTypeLike
from transformers import Wav2Vec2Processor

from hf_w2v2.models.losses import LABEL_PAD


def _round_up(length: int, multiple: int | None) -> int:
    if multiple is None or length % multiple == 0:
        return length
    return (length // multiple + 1) * multiple


def _as_array(value: Any, dtype: DTypeLike, key: str = "input_values", index: int = 0) -> np.ndarray:
    """Item ``index``'s ``key`` as a 1-D array; anything else (2-D, a scalar, text, None) is a ``ValueError``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"item {index}: {key} must be a 1-D sequence of numbers, got {type(value).__name__}") from err
    if array.ndim != 1:
        hint = " (down-mix multi-channel audio to mono)" if key == "input_values" and array.ndim > 1 else ""
        raise ValueError(f"item {index}: {key} must be 1-D, got shape {array.shape}{hint}")
    return array


def pad_sequences(
    sequences: Sequence[np.ndarray], padding_value: float, pad_to_multiple_of: int | None, dtype: DTypeLike
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D arrays into a ``(B, T_max)`` tensor and return it with the ``(B,)`` lengths.

    ``T_max`` is the longest length rounded up to ``pad_to_multiple_of`` (if given). The
    copy is done in numpy: torch's per-row slice assignment is 100x slower on small CPUs.
    """
    lengths = np.array([len(seq) for seq in sequences], dtype=np.int64)  # (B,)
    width = _round_up(int(lengths.max()) if len(sequences) else 0, pad_to_multiple_of)
    padded = np.full((len(sequences), width), padding_value, dtype=dtype)  # (B, T_max)
    for row, seq in enumerate(sequences):
        padded[row, : len(seq)] = seq
    return torch.from_numpy(padded), torch.from_numpy(lengths)


@dataclass
class DataCollatorCTCWithPadding:
    """Pad ``input_values`` and ``labels`` of dataset items into a CTC training batch.

    Items are mappings with ``input_values`` (``(T,)`` array, list or tensor) and, for
    training, ``labels`` (token ids); other keys (``input_length``, ...) are ignored.

    Returns a dict with ``input_values`` ``(B, T)`` float32, ``attention_mask`` ``(B, T)``
    long (only when ``return_attention_mask``) and ``labels`` ``(B, L)`` long.
    """

    return_attention_mask: bool = False
    """True for layer-norm models; take it from ``processor.feature_extractor`` with :meth:`from_processor`."""
    padding_value: float = 0.0
    """Audio padding value (the feature extractor's ``padding_value``)."""
    pad_to_multiple_of: int | None = None
    """Round the audio length up to a multiple of this (e.g. 320 samples = one frame, or 8 for tensor cores)."""
    pad_to_multiple_of_labels: int | None = None
    """Round the label length up to a multiple of this."""

    def __post_init__(self) -> None:
        for name in ("pad_to_multiple_of", "pad_to_multiple_of_labels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or None, got {value}")

    @classmethod
    def from_processor(
        cls,
        processor: Wav2Vec2Processor,
        pad_to_multiple_of: int | None = None,
        pad_to_multiple_of_labels: int | None = None,
    ) -> DataCollatorCTCWithPadding:
        """Collator whose mask and padding value follow ``processor.feature_extractor``."""
        extractor = processor.feature_extractor
        return cls(
            return_attention_mask=bool(extractor.return_attention_mask),
            padding_value=float(extractor.padding_value),
            pad_to_multiple_of=pad_to_multiple_of,
            pad_to_multiple_of_labels=pad_to_multiple_of_labels,
        )

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty list of features")
        for index, item in enumerate(features):
            if not isinstance(item, Mapping) or "input_values" not in item:
                found = sorted(item) if isinstance(item, Mapping) else type(item).__name__
                raise ValueError(f"item {index}: features need an 'input_values' key, got {found}")
            if ("labels" in item) != ("labels" in features[0]):
                raise ValueError(f"item {index}: either every item has 'labels' or none has (item 0 differs)")
        audio = [_as_array(item["input_values"], np.float32, "input_values", i) for i, item in enumerate(features)]
        input_values, lengths = pad_sequences(audio, self.padding_value, self.pad_to_multiple_of, np.float32)
        batch = {"input_values": input_values}  # (B, T)
        if self.return_attention_mask:
            batch["attention_mask"] = self.attention_mask(lengths.numpy(), input_values.shape[1])
        if "labels" in features[0]:
            batch["labels"] = self.pad_labels(features)
        return batch

    @staticmethod
    def attention_mask(lengths: np.ndarray, width: int) -> torch.Tensor:
        """``(B, width)`` long mask, 1 on the first ``lengths[b]`` samples of row ``b``."""
        mask = np.arange(width)[None, :] < np.asarray(lengths)[:, None]  # (B, T)
        return torch.from_numpy(mask.astype(np.int64))

    def pad_labels(self, features: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """The items' ``labels`` right-padded with -100 into ``(B, L)``."""
        labels = [_as_array(item["labels"], np.int64, "labels", i) for i, item in enumerate(features)]  # (L,) each
        padded, _ = pad_sequences(labels, LABEL_PAD, self.pad_to_multiple_of_labels, np.int64)
        return padded
