"""Audio loading, dataset sources, CTC dataset preparation and the CTC data collator.

Importing this package does not import ``datasets`` or ``pyarrow`` (the ``train`` extra):
:func:`prepare_ctc_dataset` and :class:`FilterReport` are loaded on first use.
"""

from typing import Any

from hf_w2v2.data.audio import (
    TARGET_SAMPLING_RATE,
    AudioInfo,
    AudioLoadError,
    audio_info,
    load_audio,
    load_audio_bytes,
    resample,
    to_mono,
)
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.data.sources import (
    MissingAudioFilesError,
    Utterance,
    read_audiofolder,
    read_hf_dataset,
    read_librispeech,
    read_manifest,
    read_source,
)

_LAZY = {"prepare_ctc_dataset", "FilterReport", "normalize_waveform"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from hf_w2v2.data import prepare

        return getattr(prepare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TARGET_SAMPLING_RATE",
    "AudioInfo",
    "AudioLoadError",
    "DataCollatorCTCWithPadding",
    "FilterReport",
    "MissingAudioFilesError",
    "Utterance",
    "audio_info",
    "load_audio",
    "load_audio_bytes",
    "normalize_waveform",
    "prepare_ctc_dataset",
    "read_audiofolder",
    "read_hf_dataset",
    "read_librispeech",
    "read_manifest",
    "read_source",
    "resample",
    "to_mono",
]
