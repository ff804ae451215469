"""Batching raw audio for self-supervised pre-training.

Shape legend: B batch, T samples.

The collator only pads (or crops) and builds the sample-level
``attention_mask``: time masks and distractors are drawn by
``Wav2Vec2ForPreTraining`` itself, on the model's device, from the frame
lengths it derives from that mask.

Two ways to batch clips of different lengths:

- pad to the longest and pass ``attention_mask`` (layer-norm feature encoders,
  which ignore padding);
- ``crop_to_shortest``: cut every clip of the batch to the shortest one at a
  random offset, so there is no padding at all (fairseq's default for the base
  model, whose group-norm encoder would normalise over padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hf_w2v2.data.audio import normalize_waveform


@dataclass
class DataCollatorForPreTraining:
    """Pad ``input_values`` to the longest item and return ``attention_mask`` (1 = real sample).

    Args:
        normalize: per-utterance zero-mean / unit-variance (``do_normalize`` of
            the feature extractor; wav2vec 2.0 checkpoints expect it).
        pad_to_multiple_of: round the padded length up (e.g. 320 samples = one frame).
        return_attention_mask: set False for group-norm models (see
            :func:`hf_w2v2.data.processor.uses_attention_mask`); pair it with
            ``crop_to_shortest`` so that no padding is seen as audio.
        crop_to_shortest: crop each clip to the batch's shortest, at an offset
            drawn from ``generator`` (``None``: torch's default generator, which
            the Trainer checkpoints and restores on resume).
        generator: source of the crop offsets.
    """

    normalize: bool = True
    pad_to_multiple_of: int | None = None
    return_attention_mask: bool = True
    crop_to_shortest: bool = False
    generator: torch.Generator | None = None

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("cannot collate an empty batch")
        waves = [torch.as_tensor(np.asarray(f["input_values"]), dtype=torch.float32).reshape(-1) for f in features]
        if self.crop_to_shortest:
            waves = self._crop(waves)
        if self.normalize:
            waves = [torch.from_numpy(normalize_waveform(wave.numpy())) for wave in waves]
        lengths = torch.tensor([len(w) for w in waves])  # (B,)
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_values = torch.zeros(len(waves), width)  # (B, T)
        for row, wave in enumerate(waves):
            input_values[row, : len(wave)] = wave
        batch = {"input_values": input_values}
        if self.return_attention_mask:
            batch["attention_mask"] = (torch.arange(width)[None, :] < lengths[:, None]).to(torch.long)  # (B, T)
        return batch

    def _crop(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each wave cut to the shortest length at a uniformly random offset."""
        shortest = min(len(w) for w in waves)
        slack = torch.tensor([len(w) - shortest for w in waves], dtype=torch.float64)  # (B,)
        offsets = (torch.rand(len(waves), generator=self.generator, dtype=torch.float64) * (slack + 1)).floor()
        return [w[int(o) : int(o) + shortest] for w, o in zip(waves, offsets.tolist())]
