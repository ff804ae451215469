"""Reading audio files into 16 kHz mono float32 arrays, without torchcodec.

Shape legend: T samples, C channels.

Decoding goes through libsndfile (``soundfile``: WAV, FLAC, OGG/Vorbis, OPUS, MP3 on
libsndfile >= 1.1) and resampling through libsoxr (``soxr``, a band-limited polyphase
resampler). ``datasets`` 5.x decodes its ``Audio`` feature only through torchcodec; this
module is the decoder the rest of hf_w2v2 uses instead.
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from hf_w2v2.data.paths import display_path, os_path

TARGET_SAMPLING_RATE = 16_000  # Hz; every wav2vec 2.0 checkpoint is trained at 16 kHz
SOXR_QUALITY = "HQ"  # libsoxr "high quality": 20-bit precision, 95% pass band
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".sph")
"""File extensions searched for in folders (the formats libsndfile decodes), lower case."""
NORMALIZE_EPS = 1e-7  # variance floor of Wav2Vec2FeatureExtractor's zero-mean/unit-variance step
MONO_ENERGY_LOSS = 0.9  # warn when the mono down-mix keeps less than 10% of the channels' mean energy
SILENCE_ENERGY = 1e-8  # mean square below which a recording is silent anyway (nothing to lose)
END_CHECK_FRAMES = 64  # frames read at the end a header declares, to find files cut short (4 ms at 16 kHz)

logger = logging.getLogger(__name__)
AUDIO_WARNINGS: Counter[str] = Counter()
"""Files decoded with a warning in this process, by kind (``mono_energy_loss``, ``truncated``)."""


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
        raise AudioLoadError(f"audio file not found: {display_path(path)}")
    try:
        info = sf.info(os_path(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioLoadError(f"cannot read audio file {display_path(path)}: {err}") from err
    return AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))


def check_audio_end(source: str | os.PathLike | bytes, info: AudioInfo) -> None:
    """Read the last frames ``info`` (the header) declares, without decoding the rest.

    A FLAC/OGG/MP3 file cut short keeps an intact header that still declares its full length; only
    decoding finds the cut. Seeking to the end and reading :data:`END_CHECK_FRAMES` frames finds it
    at the cost of a few reads (the formats seek by frame index). ``source`` is a path or encoded bytes.

    Raises:
        AudioLoadError: the data ends before the declared length (the file and both lengths are named).
    """
    if info.num_frames == 0:
        return
    handle = io.BytesIO(source) if isinstance(source, bytes) else os_path(source)
    start = max(0, info.num_frames - END_CHECK_FRAMES)
    try:
        with sf.SoundFile(handle) as audio:
            audio.seek(start)
            read = audio.read(info.num_frames - start, dtype="float32", always_2d=True).shape[0]
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        read, detail = 0, f" ({err})"
    else:
        detail = ""
    if read < info.num_frames - start:
        raise AudioLoadError(
            f"truncated audio file {display_path(info.path)}: its header declares {info.num_frames} frames "
            f"({info.duration:.2f} s) but its data ends before{detail}; re-copy or re-encode it"
        )


def audio_info_bytes(data: bytes, name: str = "<bytes>") -> AudioInfo:
    """:func:`audio_info` of an encoded file held in memory (``name`` is used in errors)."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioLoadError(f"cannot read audio {name}: {err}") from err
    return AudioInfo(name, int(info.samplerate), int(info.frames), int(info.channels))


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


def _decode(source: str | io.BytesIO, name: str, sampling_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode ``source`` (a path or an in-memory file), its first ``max_seconds`` only where given, down-mix,
    check, resample."""
    handle = os_path(source) if isinstance(source, str) else source
    try:
        if max_seconds is None:
            audio, orig_sr = sf.read(handle, dtype="float32", always_2d=True)
        else:
            with sf.SoundFile(handle) as f:
                orig_sr, frames = f.samplerate, math.ceil(max_seconds * f.samplerate)
                audio = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:  # audio: (T, C)
        raise AudioLoadError(f"cannot decode audio file {name}: {err}") from err
    if audio.shape[0] == 0:
        raise AudioLoadError(f"audio file holds no samples: {name}")
    if max_seconds is None:
        _check_truncated_wav(source, name, audio.shape[0], int(orig_sr))
    stereo = audio
    audio = to_mono(audio)
    if stereo.shape[1] > 1:
        _check_mono_energy(stereo, audio, name)
    if not np.isfinite(audio).all():
        raise AudioLoadError(f"audio file holds NaN or infinite samples: {name}")
    return np.ascontiguousarray(resample(audio, int(orig_sr), sampling_rate))


def _check_mono_energy(channels: np.ndarray, mono: np.ndarray, name: str) -> None:
    """Warn (and count) when averaging ``(T, C)`` channels into ``(T,)`` cancels most of the signal.

    Channels in anti-phase (a miswired microphone, some stereo effects) sum to near silence: the
    model would hear nothing and the transcript would be empty, without a word.
    """
    channel_energy = float(np.mean(np.square(channels, dtype=np.float64)))
    if channel_energy < SILENCE_ENERGY:
        return
    kept = float(np.mean(np.square(mono, dtype=np.float64))) / channel_energy
    if kept < 1.0 - MONO_ENERGY_LOSS:
        AUDIO_WARNINGS["mono_energy_loss"] += 1
        logger.warning(
            "%s: the mono down-mix of its %d channels keeps %.1f%% of their energy (channels out of phase?); "
            "consider using one channel",
            name,
            channels.shape[1],
            100 * kept,
        )


def declared_wav_frames(head: bytes) -> int | None:
    """Frames a RIFF/WAVE header says its ``data`` chunk holds (None: not a WAV, or a streaming header)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, block_align = 12, 0
    while position + 8 <= len(head):
        chunk, size = head[position : position + 4], struct.unpack("<I", head[position + 4 : position + 8])[0]
        if chunk == b"fmt " and position + 22 <= len(head):
            block_align = struct.unpack("<H", head[position + 20 : position + 22])[0]
        if chunk == b"data":
            return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def _check_truncated_wav(source: str | io.BytesIO, name: str, frames: int, sampling_rate: int) -> None:
    """Warn (and count) when a WAV file ends before the frames its header declares (a cut-off copy)."""
    if isinstance(source, io.BytesIO):
        head = source.getvalue()[:4096]
    else:
        with open(source, "rb") as handle:
            head = handle.read(4096)
    declared = declared_wav_frames(head)
    if declared is not None and frames < declared:
        AUDIO_WARNINGS["truncated"] += 1
        logger.warning(
            "%s: truncated WAV: its header declares %d frames, only %d could be read (%.2f s of %.2f s)",
            name,
            declared,
            frames,
            frames / sampling_rate,
            declared / sampling_rate,
        )


def load_audio(
    path: str | os.PathLike, sampling_rate: int = TARGET_SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Decode ``path`` into a float32 mono array at ``sampling_rate`` Hz.

    Multi-channel files are averaged to mono before resampling (cheaper, and the
    resampler is linear, so the order does not change the result).

    Args:
        path: any file libsndfile can read (WAV, FLAC, OGG, ...).
        sampling_rate: wanted output rate in Hz.
        max_seconds: decode only the recording's first ``max_seconds`` (a calibration clip from an hour-long
            recording, without decoding the hour); a WAV cut short is then not noticed.

    Returns:
        ``(T,)`` float32 samples in [-1, 1] (for integer PCM sources).

    Raises:
        AudioLoadError: the file is missing, cannot be decoded, holds no samples, or
            holds NaN/inf samples. The message names the file.
    """
    path = os.fspath(path)
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive (or None: all of it), got {max_seconds}")
    if not os.path.isfile(path):
        raise AudioLoadError(f"audio file not found: {display_path(path)}")
    return _decode(path, display_path(path), sampling_rate, max_seconds)


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
