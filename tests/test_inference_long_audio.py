"""Long audio cut at pauses: transcribe and align by segment, bounded Viterbi, ``segment`` and VAD ``classify``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_w2v2.cli import main
from hf_w2v2.data.audio import load_audio
from hf_w2v2.decoding.align import ctc_viterbi
from hf_w2v2.inference.align import align_array
from hf_w2v2.inference.segments import ModelVAD, Segmenter
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification
from hf_w2v2.models.configuration import tiny
from hf_w2v2.text.error_rates import error_rates

SHIPPED = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
DEV = Path(__file__).parent / "fixtures" / "finetune" / "dev"
RATE = 16_000


@pytest.fixture(scope="module")
def dev() -> tuple[list[np.ndarray], list[str]]:
    with (DEV / "metadata.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [load_audio(DEV / r["file_name"]) for r in rows], [r["text"] for r in rows]


@pytest.fixture(scope="module")
def long_recording(dev) -> np.ndarray:
    """The six dev clips at their own levels with 0.6 s of silence between them (17 s)."""
    gap = np.zeros(int(0.6 * RATE), dtype=np.float32)
    return np.concatenate([x for clip in dev[0] for x in (clip, gap)])


def test_segmented_transcript_matches_clip_by_clip(dev, long_recording) -> None:
    plain = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu")
    cut = Transcriber(plain.model, plain.processor, device="cpu", segmenter=Segmenter())
    assert len(cut.segments(long_recording)) == len(dev[0])
    reference = [" ".join(dev[1])]
    clip_by_clip = " ".join(plain.transcribe_array(c).text for c in dev[0])
    transcription = cut.transcribe_array(long_recording)
    # The target: within 1.15x of the clip-by-clip CER (windows over the whole file: 1.5x).
    cer = error_rates(reference, [transcription.text])["cer"]
    assert cer <= 1.15 * error_rates(reference, [clip_by_clip])["cer"]
    starts = [w.start for w in transcription.words]
    assert starts == sorted(starts) and transcription.words[-1].end <= long_recording.shape[0] / RATE
    assert cut.transcribe_array(np.zeros(RATE, dtype=np.float32)).text == ""  # no speech, no text


def test_segmented_alignment_keeps_words_in_their_clips(dev, long_recording) -> None:
    plain = Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu")
    cut = Transcriber(plain.model, plain.processor, device="cpu", segmenter=Segmenter())
    alignment = align_array(cut, long_recording, " ".join(dev[1]))
    assert [w.text for w in alignment.words] == " ".join(dev[1]).split()
    bounds = np.cumsum([0] + [c.shape[0] + int(0.6 * RATE) for c in dev[0]]) / RATE
    first_words = np.cumsum([0] + [len(t.split()) for t in dev[1]])
    for k in range(len(dev[0])):
        words = alignment.words[first_words[k] : first_words[k + 1]]
        assert bounds[k] - 0.06 <= words[0].start and words[-1].end <= bounds[k + 1] - 0.6 + 0.06


@pytest.mark.parametrize("seed", range(3))
def test_pruned_viterbi_equals_the_full_one(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(3 * torch.randn(300, 6, generator=generator), dim=-1)
    targets = torch.randint(1, 6, (60,), generator=generator).tolist()
    full = ctc_viterbi(log_probs, targets, beam=None)
    assert ctc_viterbi(log_probs, targets) == full
    assert ctc_viterbi(log_probs, targets, beam=1e-3)[1] <= full[1] + 1e-9  # a tiny beam widens or loses a little


def test_viterbi_memory_follows_the_window() -> None:
    """3,000 frames and 2,000 targets align in under a second on a peaked posterior."""
    frames, vocab, tokens = 3000, 30, 1000
    targets = (torch.arange(tokens) % (vocab - 1) + 1).tolist()
    ids = torch.zeros(frames, dtype=torch.long)
    ids[torch.arange(tokens) * 3 + 1] = torch.tensor(targets)
    log_probs = torch.log_softmax(torch.nn.functional.one_hot(ids, vocab).float() * 8, dim=-1)
    path, _ = ctc_viterbi(log_probs, targets)
    assert [path[3 * u + 1] for u in range(tokens)] == list(range(tokens))


@pytest.fixture(scope="module")
def vad_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vad")
    config = tiny(num_labels=2, id2label={0: "non-speech", 1: "speech"}, label2id={"non-speech": 0, "speech": 1})
    torch.manual_seed(0)
    Wav2Vec2ForAudioFrameClassification(config).save_pretrained(folder)
    return folder


def test_segment_and_classify_a_vad_model(tmp_path, vad_folder, dev, long_recording, capsys) -> None:
    audio = tmp_path / "long.flac"
    sf.write(audio, long_recording, RATE)
    assert main(["segment", "energy", str(audio)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["segments"]) == len(dev[0])
    assert record["duration"] == pytest.approx(long_recording.shape[0] / RATE, abs=0.01)
    assert main(["segment", str(vad_folder), str(audio), "--format", "rttm", "--output-dir", str(tmp_path)]) == 0
    rttm = (tmp_path / "long.rttm").read_text()
    assert all(line.startswith("SPEAKER long 1 ") for line in rttm.splitlines())
    # classify on a frame model prints segments (JSON) instead of crashing.
    assert main(["classify", str(vad_folder), str(audio)]) == 0
    assert "segments" in json.loads(capsys.readouterr().out)
    vad = ModelVAD.from_pretrained(str(vad_folder))
    whole = Segmenter(vad=vad).segments(long_recording)
    stream = Segmenter(vad=vad).stream()
    pieces = [s for k in range(0, long_recording.shape[0], 7_000) for s in stream.push(long_recording[k : k + 7_000])]
    assert pieces + stream.finish() == whole
    assert main(["segment", str(SHIPPED), str(audio)]) == 2  # a CTC model is not a VAD
