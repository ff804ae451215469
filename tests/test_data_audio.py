"""Audio decoding, down-mixing and resampling (hf_w2v2.data.audio) on shipped fixture files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_w2v2.data.audio import AudioLoadError, audio_info, load_audio, load_audio_bytes, resample, to_mono

AUDIO = Path(__file__).parent / "fixtures" / "audio"


def _peak_hz(audio: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sampling_rate)[spectrum.argmax()])


def test_16k_file_is_returned_unchanged() -> None:
    audio = load_audio(AUDIO / "speech_16k.flac")
    raw, sr = sf.read(AUDIO / "speech_16k.flac", dtype="float32")
    assert sr == 16000 and audio.dtype == np.float32 and audio.ndim == 1
    np.testing.assert_array_equal(audio, raw)


def test_8k_wav_is_upsampled_keeping_pitch_and_level() -> None:
    audio = load_audio(AUDIO / "tone_8k.wav")
    assert audio.dtype == np.float32 and audio.shape == (8000,)  # 0.5 s at 16 kHz
    assert abs(_peak_hz(audio, 16000) - 440) < 5
    middle = audio[1000:-1000]  # away from the resampler's edge transients
    assert np.abs(middle).max() == pytest.approx(0.5, abs=0.02)


def test_48k_stereo_is_downmixed_and_downsampled() -> None:
    audio = load_audio(AUDIO / "tone_48k_stereo.flac")
    assert audio.shape == (4000,)  # 0.25 s at 16 kHz
    assert abs(_peak_hz(audio, 16000) - 440) < 10
    assert np.abs(audio[500:-500]).max() == pytest.approx(0.4, abs=0.02)  # mean of 0.6 and 0.2


def test_the_first_seconds_only_are_decoded_where_asked(tmp_path, monkeypatch) -> None:
    """max_seconds: a calibration clip from a long recording without decoding all of it."""
    whole = load_audio(AUDIO / "speech_16k.flac")
    np.testing.assert_array_equal(load_audio(AUDIO / "speech_16k.flac", max_seconds=0.5), whole[:8000])
    start = load_audio(AUDIO / "tone_48k_stereo.flac", max_seconds=0.1)  # down-mixed and resampled alike
    assert start.shape == (1600,)
    np.testing.assert_allclose(start[:1400], load_audio(AUDIO / "tone_48k_stereo.flac")[:1400], atol=1e-3)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16_000 * 600, np.float32), 16_000)  # ten minutes
    read = []
    real_read = sf.SoundFile.read
    monkeypatch.setattr(
        sf.SoundFile, "read", lambda self, frames=-1, **kw: read.append(frames) or real_read(self, frames, **kw)
    )
    assert load_audio(long, max_seconds=2.0).shape == (32_000,) and read == [32_000]
    assert load_audio(AUDIO / "speech_16k.flac", max_seconds=3600).shape == whole.shape  # a shorter file: all of it
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="max_seconds must be positive"):
            load_audio(AUDIO / "speech_16k.flac", max_seconds=bad)


def test_other_target_rate() -> None:
    assert load_audio(AUDIO / "tone_48k_stereo.flac", sampling_rate=8000).shape == (2000,)


@pytest.mark.parametrize("name", ["corrupt.flac", "empty.wav", "does_not_exist.flac"])
def test_bad_files_raise_a_value_error_naming_the_file(name: str) -> None:
    with pytest.raises(AudioLoadError, match=name) as info:
        load_audio(AUDIO / name)
    assert isinstance(info.value, ValueError)


def test_non_finite_samples_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1] * 200, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioLoadError, match="NaN"):
        load_audio(path)


def test_bytes_decode_like_files() -> None:
    path = AUDIO / "tone_48k_stereo.flac"
    np.testing.assert_array_equal(load_audio_bytes(path.read_bytes()), load_audio(path))
    with pytest.raises(AudioLoadError, match="clip.flac"):
        load_audio_bytes(b"not audio at all", name="clip.flac")


def test_audio_info_reads_header() -> None:
    info = audio_info(AUDIO / "tone_48k_stereo.flac")
    assert (info.sampling_rate, info.channels, info.num_frames) == (48000, 2, 12000)
    assert info.duration == pytest.approx(0.25)
    with pytest.raises(AudioLoadError, match="corrupt.flac"):
        audio_info(AUDIO / "corrupt.flac")


def test_resample_lengths_dtype_and_identity() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(44100).astype(np.float64)
    out = resample(audio, 44100, 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    same = resample(audio, 16000, 16000)
    np.testing.assert_allclose(same, audio.astype(np.float32))
    assert resample(rng.standard_normal((4800, 2)), 48000, 16000).shape == (1600, 2)
    with pytest.raises(ValueError, match="sampling rates"):
        resample(audio, 0, 16000)


def test_resample_removes_content_above_new_nyquist() -> None:
    t = np.arange(48000) / 48000
    high = np.sin(2 * np.pi * 12000 * t).astype(np.float32)  # above 8 kHz: must not alias
    out = resample(high, 48000, 16000)
    assert np.abs(out[200:-200]).max() < 0.01


def test_to_mono() -> None:
    stereo = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)  # (T, C)
    np.testing.assert_allclose(to_mono(stereo), [0.5, 0.5])
    np.testing.assert_array_equal(to_mono(stereo[:, :1]), [1.0, 0.5])


def test_antiphase_stereo_warns_and_counts(tmp_path, caplog) -> None:
    """Issue 23.7: stereo in anti-phase used to down-mix to silence without a word."""
    import logging

    from hf_w2v2.data import audio as audio_module

    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    sf.write(tmp_path / "anti.wav", np.stack([tone, -tone], axis=1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "same.wav", np.stack([tone, tone], axis=1), 16000, subtype="FLOAT")
    before = audio_module.AUDIO_WARNINGS["mono_energy_loss"]
    with caplog.at_level(logging.WARNING, logger="hf_w2v2.data.audio"):
        assert np.abs(audio_module.load_audio(tmp_path / "anti.wav")).max() < 1e-6
        audio_module.load_audio(tmp_path / "same.wav")
    assert audio_module.AUDIO_WARNINGS["mono_energy_loss"] == before + 1
    assert "anti.wav: the mono down-mix of its 2 channels keeps 0.0% of their energy" in caplog.text
    assert "same.wav" not in caplog.text


def test_truncated_wav_warns_with_expected_and_read_frames(tmp_path, caplog) -> None:
    """Issue 23.7: a truncated WAV used to decode partially without a word."""
    import logging

    from hf_w2v2.data import audio as audio_module

    sf.write(tmp_path / "full.wav", np.zeros(16000, dtype=np.float32) + 0.1, 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: 44 + 2 * 4000])  # 44-byte header + 4000 16-bit frames
    assert audio_module.declared_wav_frames(data[:64]) == 16000
    before = audio_module.AUDIO_WARNINGS["truncated"]
    with caplog.at_level(logging.WARNING, logger="hf_w2v2.data.audio"):
        assert audio_module.load_audio(tmp_path / "cut.wav").shape == (4000,)
        audio_module.load_audio(tmp_path / "full.wav")
        audio_module.load_audio_bytes(data[: 44 + 2 * 100], name="mem.wav")
    assert audio_module.AUDIO_WARNINGS["truncated"] == before + 2
    assert "cut.wav: truncated WAV: its header declares 16000 frames, only 4000 could be read" in caplog.text
    assert "mem.wav: truncated WAV" in caplog.text and "full.wav" not in caplog.text
