"""Speed perturbation: a clip played faster or slower, tempo and pitch together (Ko et al., Interspeech 2015).

The classic augmentation for speaker variety when a corpus has few speakers: a factor of 1.1 shortens
the clip and raises every formant by 10%, much as a shorter vocal tract would.
"""

from __future__ import annotations

import numpy as np

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, resample


def speed_perturb(audio: np.ndarray, factor: float, sampling_rate: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """``audio`` (T,) at ``factor`` times its speed: (round(T / factor),) samples at the same ``sampling_rate``.

    The samples are read as if recorded at ``factor * sampling_rate`` and resampled to ``sampling_rate``.
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return np.asarray(audio, dtype=np.float32)
    return resample(audio, round(sampling_rate * factor), sampling_rate)
