"""Reading audio files into 16 kHz mono float32 arrays, without torchcodec.

Shape legend: T samples, C channels.

Decoding goes through libsndfile (``soundfile``: WAV, FLAC, OGG/Vorbis, OPUS, MP3 on
libsndfile >= 1.1) and resampling through libsoxr (``soxr``, a band-limited polyphase
resampler). ``datasets`` 5.x decodes its ``Audio`` feature only through torchcodec; this
module is the decoder the rest of hf_w2v2 uses instead.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

TARGET_SAMPLING_RATE = 16_000  # Hz; every wav2vec 2.0 checkpoint is trained at 16 kHz
SOXR_QUALITY = "HQ"  # libsoxr "high quality": 20-bit precision, 95% pass band
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".sph")
"""File extensions searched for in folders (the formats libsndfile decodes), lower case."""
NORMALIZE_EPS = 1e-7  # variance floor of Wav2Vec2FeatureExtractor's zero-mean/unit-variance step


class AudioLoadError(ValueError):
    """A file that cannot be decoded, holds no samples, or holds non-finite samples."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, read without decoding the samples."""

    path: str
    sampling_rate: int  # Hz
    num_frames: int  # samples per channel
    channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_frames / self.sampling_rate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path`` (sampling rate, length, channels) without decoding it.

    Raises:
        AudioLoadError: the file is missing or libsndfile cannot parse it.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioLoadError(f"audio file not found: {path}")
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioLoadError(f"cannot read audio file {path}: {err}") from err
    return AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``audio`` from ``orig_sr`` to ``target_sr`` Hz with libsoxr (HQ).

    Args:
        audio: ``(T,)`` mono or ``(T, C)`` multi-channel samples.
        orig_sr: sampling rate of ``audio`` in Hz.
        target_sr: wanted sampling rate in Hz.

    Returns:
        float32 array of ``round(T * target_sr / orig_sr)`` samples (same channel layout);
        the input itself (as float32) when the rates already match.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sampling rates must be positive, got orig_sr={orig_sr}, target_sr={target_sr}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (T,) or (T, C), got shape {audio.shape}")
    if orig_sr == target_sr or audio.shape[0] == 0:
        return audio
    return soxr.resample(audio, orig_sr, target_sr, quality=SOXR_QUALITY).astype(np.float32, copy=False)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Down-mix ``(T, C)`` to ``(T,)`` by averaging channels; ``(T,)`` passes through."""
    if audio.ndim == 1:
        return audio
    if audio.ndim != 2:
        raise ValueError(f"audio must be (T,) or (T, C), got shape {audio.shape}")
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio.mean(axis=1, dtype=np.float32)  # (T, C) -> (T,)


def _decode(source: str | io.BytesIO, name: str, sampling_rate: int) -> np.ndarray:
    """Decode ``source`` (a path or an in-memory file), down-mix, check, resample."""
    try:
        audio, orig_sr = sf.read(source, dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioLoadError(f"cannot decode audio file {name}: {err}") from err
    if audio.shape[0] == 0:
        raise AudioLoadError(f"audio file holds no samples: {name}")
    audio = to_mono(audio)
    if not np.isfinite(audio).all():
        raise AudioLoadError(f"audio file holds NaN or infinite samples: {name}")
    return np.ascontiguousarray(resample(audio, int(orig_sr), sampling_rate))


def load_audio(path: str | os.PathLike, sampling_rate: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Decode ``path`` into a float32 mono array at ``sampling_rate`` Hz.

    Multi-channel files are averaged to mono before resampling (cheaper, and the
    resampler is linear, so the order does not change the result).

    Args:
        path: any file libsndfile can read (WAV, FLAC, OGG, ...).
        sampling_rate: wanted output rate in Hz.

    Returns:
        ``(T,)`` float32 samples in [-1, 1] (for integer PCM sources).

    Raises:
        AudioLoadError: the file is missing, cannot be decoded, holds no samples, or
            holds NaN/inf samples. The message names the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioLoadError(f"audio file not found: {path}")
    return _decode(path, path, sampling_rate)


def load_audio_bytes(data: bytes, sampling_rate: int = TARGET_SAMPLING_RATE, name: str = "<bytes>") -> np.ndarray:
    """Like :func:`load_audio` for an encoded file held in memory (e.g. a ``datasets`` Audio cell).

    ``name`` (the original path, when known) is used in error messages.
    """
    if not data:
        raise AudioLoadError(f"audio file holds no data: {name}")
    return _decode(io.BytesIO(data), name, sampling_rate)


def normalize_waveform(audio: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the utterance: ``(x - mean) / sqrt(var + 1e-7)``.

    The ``do_normalize`` step of ``Wav2Vec2FeatureExtractor``, which every wav2vec 2.0
    checkpoint was trained with; the one normalisation of hf_w2v2 (fine-tuning data,
    pre-training batches, transcription).
    """
    audio = np.asarray(audio, dtype=np.float32)
    return ((audio - audio.mean()) / np.sqrt(audio.var() + NORMALIZE_EPS)).astype(np.float32, copy=False)


def is_audio_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of :data:`AUDIO_EXTENSIONS` (case-insensitive)."""
    return os.fspath(path).lower().endswith(AUDIO_EXTENSIONS)


def find_audio_files(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Expand files and folders into a file list, in the order given, without repeats.

    Folders are searched recursively (sorted) for :data:`AUDIO_EXTENSIONS`. Files named
    explicitly are kept whatever their extension, so unreadable ones are reported rather
    than skipped silently.

    Raises:
        FileNotFoundError: an input path does not exist.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            for root, dirs, names in os.walk(item):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names) if is_audio_file(n))
        elif os.path.exists(item):
            files.append(item)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return list(dict.fromkeys(files))
