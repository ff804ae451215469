"""Planning and rendering of synthetic speech (hf_w2v2.data.synthesize)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from hf_w2v2.data import synthesize as synth
from hf_w2v2.data.sources import read_source

LINES = [
    "In the beginning God created the heaven and the earth.",
    "Short one.",  # 2 words: too short
    "And the earth was without form, and void; and darkness was upon the face of the deep.",
    "It's a well-known fact that cats sleep",
    "Let there be light and there was light",
    "The quick brown fox jumps over the lazy dog today",
]


def test_normalize_sentence_keeps_the_synth_alphabet():
    assert synth.normalize_sentence("It's a well-known fact; 3 cats!") == "IT'S A WELL KNOWN FACT CATS"


def test_pick_sentences_is_seeded_bounded_and_excludes():
    picked = synth.pick_sentences(LINES, 4, exclude=["let there be light and there was light"], seed=3)
    assert picked == synth.pick_sentences(LINES, 4, exclude=["LET THERE BE LIGHT AND THERE WAS LIGHT"], seed=3)
    assert len(set(picked)) == 4 and "LET THERE BE LIGHT AND THERE WAS LIGHT" not in picked
    assert all(5 <= len(s.split()) <= 30 for s in picked)
    with pytest.raises(ValueError, match="only 4 have 5-30 words"):
        synth.pick_sentences(LINES, 5, exclude=["let there be light and there was light"])


def test_count_for_hours_uses_the_mean_sentence_length():
    lines = [" ".join(["WORD"] * 9 + ["X" + chr(65 + i // 26) + chr(65 + i % 26)]) for i in range(100)]  # 10 words
    expected = round(2.0 * 3600 / (10 * synth.SECONDS_PER_WORD))
    assert synth.count_for_hours(lines, 2.0, sample_size=50) == expected
    assert synth.count_for_hours(lines, 4.0, sample_size=50) == round(4.0 * 3600 / (10 * synth.SECONDS_PER_WORD))


def test_plan_corpus_follows_the_engine_weights_and_voices():
    sentences = [f"SENTENCE NUMBER {i} HAS FIVE" for i in range(300)]
    plan = synth.plan_corpus(sentences, engine_weights={"flite": 0.75, "espeak": 0.25, "festival": 0.0}, seed=1)
    assert plan == synth.plan_corpus(sentences, engine_weights={"flite": 0.75, "espeak": 0.25, "festival": 0.0}, seed=1)
    engines = [item.engine for item in plan]
    assert "festival" not in engines and 0.65 < engines.count("flite") / len(plan) < 0.85
    voices = synth.default_voices()
    assert all(item.voice in voices[item.engine] for item in plan)
    assert any(item.augmentation.noise for item in plan) and any(item.augmentation.speed != 1.0 for item in plan)
    assert plan[0].file_name.startswith("audio/") and plan[0].file_name.endswith(".flac")
    with pytest.raises(ValueError, match="unknown TTS engine"):
        synth.plan_corpus(sentences, engine_weights={"piper": 1.0})


def test_sox_effects_and_tts_commands(tmp_path):
    assert synth.Augmentation().sox_effects() == ["rate", "16000"]
    effects = synth.Augmentation(speed=1.1, pitch_cents=-200, reverb=30, telephone=True).sox_effects()
    assert effects == ["speed", "1.1", "pitch", "-200", "reverb", "30", "sinc", "300-3400", "rate", "16000"]
    item = synth.SynthItem(0, "HELLO THERE", "espeak", "en-gb+f2", rate=150, pitch=40)
    command = synth.tts_command(item, tmp_path / "a.wav", tmp_path / "a.txt")
    assert command[:7] == ["espeak-ng", "-v", "en-gb+f2", "-s", "150", "-p", "40"]
    festival = synth.SynthItem(1, "HELLO", "festival", "kal_diphone")
    assert "(voice_kal_diphone)" in synth.tts_command(festival, tmp_path / "b.wav", tmp_path / "b.txt")
    assert item.speaker_id == "en-gb"


def test_colored_noise_has_the_right_slope_and_snr():
    rng = np.random.default_rng(0)
    n = 16000
    low_share = {}
    for kind in synth.NOISE_KINDS:
        noise = synth.colored_noise(kind, n, rng)
        assert abs(np.sqrt(np.mean(noise**2)) - 1.0) < 1e-6
        power = np.abs(np.fft.rfft(noise)) ** 2
        low_share[kind] = power[: len(power) // 16].sum() / power.sum()
    assert low_share["white"] < 0.1 < low_share["pink"] < low_share["brown"]
    tone = np.sin(np.arange(n) * 2 * np.pi * 440 / 16000) * 0.3
    noise = synth.colored_noise("white", n, np.random.default_rng(1))
    mixed = synth.add_noise(tone, noise, snr_db=10.0)
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((mixed - tone) ** 2))
    assert abs(snr - 10.0) < 0.01
    loud = synth.add_noise(tone * 3, noise, snr_db=0.0)
    assert np.max(np.abs(loud)) <= 0.99 + 1e-9


def test_missing_programs_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(synth.shutil, "which", lambda tool: None if tool == "flite" else "/usr/bin/" + tool)
    with pytest.raises(RuntimeError, match=r"missing program\(s\) \['flite'\].*apt-get install"):
        synth.check_tools(["espeak", "flite"])
    synth.check_tools(["espeak"])


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox (apt-get install espeak-ng sox)",
)
def test_synthesize_corpus_writes_a_readable_audiofolder_and_reports_failures(tmp_path):
    good = [
        synth.SynthItem(i, text, "espeak", "en-us+m1", augmentation=aug)
        for i, (text, aug) in enumerate(
            [
                ("HELLO THERE HOW ARE YOU", synth.Augmentation()),
                ("THE SUN IS BRIGHT TODAY", synth.Augmentation(speed=0.9, reverb=20, noise="pink", snr_db=10.0)),
            ]
        )
    ]
    bad = synth.SynthItem(2, "THIS VOICE DOES NOT EXIST", "espeak", "xx-no-such-voice")
    report = synth.synthesize_corpus(good + [bad], tmp_path, num_workers=2, progress=False)
    assert [item.index for item, _ in report.failures] == [2]
    lines = report.failure_lines()
    assert lines[0].startswith("FAILED espeak xx-no-such-voice") and lines[-1] == "1 item(s) failed and were left out"
    utterances = read_source(str(tmp_path))
    assert sorted(u.text for u in utterances) == ["HELLO THERE HOW ARE YOU", "THE SUN IS BRIGHT TODAY"]
    for row in report.rows:
        audio, rate = sf.read(tmp_path / row["file_name"])
        assert rate == 16000 and len(audio) / rate == pytest.approx(float(row["duration"]), abs=1e-3)
        assert 0.8 < len(audio) / rate < 5.0 and np.abs(audio).max() > 0.05
    assert report.hours == pytest.approx(sum(float(r["duration"]) for r in report.rows) / 3600)


DIGITS = {"0": "zero", "1": "one", "2": "two"}


def test_plan_keywords_speaks_every_keyword_in_every_voice():
    voices = {"espeak": ["en-us+m1", "en-gb+f2"], "flite": ["kal16"]}
    plan = synth.plan_keywords(DIGITS, voices=voices, repeats=2, lowpass_hz=4000, seed=4)
    assert plan == synth.plan_keywords(DIGITS, voices=voices, repeats=2, lowpass_hz=4000, seed=4)
    assert len(plan) == 3 * 3 * 2 and [item.index for item in plan] == list(range(18))
    pairs = [(item.voice, item.label, item.text) for item in plan]
    for voice in ("en-us+m1", "en-gb+f2", "kal16"):
        for label, word in DIGITS.items():
            assert pairs.count((voice, label, word.upper())) == 2
    assert all(item.augmentation.trim_silence and item.augmentation.lowpass_hz == 4000 for item in plan)
    assert len({(item.rate, item.pitch) for item in plan}) > 10  # each clip draws its own
    with pytest.raises(ValueError, match="no keywords"):
        synth.plan_keywords({})
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        synth.plan_keywords(DIGITS, repeats=0)
    with pytest.raises(ValueError, match="unknown TTS engine"):
        synth.plan_keywords(DIGITS, voices={"piper": ["joe"]})


def test_default_voices_leave_out_named_voices_and_accents():
    voices = synth.default_voices(exclude=["en-us-nyc", "en-gb+f2", "awb"])
    assert "awb" not in voices["flite"] and "kal16" in voices["flite"]
    assert "en-gb+f2" not in voices["espeak"] and "en-gb+f3" in voices["espeak"]
    assert not [v for v in voices["espeak"] if v.split("+")[0] == "en-us-nyc"]
    assert len(voices["espeak"]) == len(synth.default_voices()["espeak"]) - len(synth.ESPEAK_VARIANTS) - 1


def test_speaker_prosody_keeps_each_voice_one_speaker():
    voices = {"espeak": ["en-us+m1", "en-gb+f2", "en-us+f3"]}
    plan = synth.plan_keywords(DIGITS, voices=voices, repeats=4, augment_p=1.0, speaker_prosody=True, seed=2)
    for voice in voices["espeak"]:
        clips = [item for item in plan if item.voice == voice]
        rates, pitches = [item.rate for item in clips], [item.pitch for item in clips]
        assert max(rates) - min(rates) <= 20 and max(pitches) - min(pitches) <= 8
        assert all(item.augmentation.speed == 1.0 and item.augmentation.pitch_cents == 0 for item in clips)
        assert {item.speaker_id for item in clips} == {voice}
    assert any(item.augmentation.noise for item in plan)  # channel effects still apply
    free = synth.plan_keywords(DIGITS, voices=voices, repeats=4, augment_p=1.0, seed=2)
    assert max(item.pitch for item in free) - min(item.pitch for item in free) > 20
    assert {item.speaker_id for item in free} == {"en-us", "en-gb"}


def test_sox_effects_trim_first_and_band_limit_before_resampling():
    effects = synth.Augmentation(trim_silence=True, lowpass_hz=4000).sox_effects()
    trim = ["silence", "1", "0.02", "1%"]
    assert effects == trim + ["reverse"] + trim + ["reverse", "sinc", "-4000", "rate", "16000"]


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox (apt-get install espeak-ng sox)",
)
def test_keyword_corpus_has_labels_tight_clips_and_the_asked_band(tmp_path):
    voices = {"espeak": ["en-us+m1"]}
    plain = [
        synth.SynthItem(0, "SEVEN", "espeak", "en-us+m1", label="7"),
        synth.SynthItem(1, "SEVEN", "espeak", "en-us+m1", augmentation=synth.Augmentation(trim_silence=True)),
    ]
    report = synth.synthesize_corpus(plain, tmp_path / "plain", num_workers=1, progress=False)
    untrimmed, trimmed = (float(row["duration"]) for row in sorted(report.rows, key=lambda r: r["file_name"]))
    assert trimmed < untrimmed - 0.05  # the engine's silence is cut
    plan = synth.plan_keywords(DIGITS, voices=voices, augment_p=0.0, lowpass_hz=4000)
    report = synth.synthesize_corpus(plan, tmp_path / "kw", num_workers=2, progress=False)
    assert not report.failures
    header = (tmp_path / "kw" / "metadata.csv").read_text().splitlines()[0]
    assert header.split(",")[-1] == "label"
    assert sorted(row["label"] for row in report.rows) == ["0", "1", "2"]
    for row in report.rows:
        audio, rate = sf.read(tmp_path / "kw" / row["file_name"])
        power = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / rate)
        assert power[freqs > 4500].sum() < 1e-3 * power.sum()  # band-limited like 8 kHz audio
        assert 0.1 < len(audio) / rate < 1.0
