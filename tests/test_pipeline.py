"""transformers' ASR pipeline runs our Wav2Vec2ForCTC with a Wav2Vec2Processor's parts."""

from __future__ import annotations

import pytest
from fixtures.decoding.tiny import FIXTURES, make_model, make_processor
from transformers import pipeline

from hf_w2v2 import Wav2Vec2ForCTC
from hf_w2v2.data.audio import load_audio
from hf_w2v2.inference.transcribe import Transcriber


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    model = make_model(seed=5)
    processor = make_processor(tmp_path_factory.mktemp("proc"), model.config)
    return model, processor


def test_pipeline_matches_our_greedy_transcription(parts) -> None:
    model, processor = parts
    assert isinstance(model, Wav2Vec2ForCTC)
    asr = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device="cpu",
    )
    assert asr.type == "ctc"
    audio = load_audio(FIXTURES / "utt1.flac")
    ours = Transcriber(model, processor, chunk_s=None).transcribe_array(audio)
    out = asr({"raw": audio, "sampling_rate": 16_000}, return_timestamps="word")
    assert out["text"] == ours.text and ours.text
    theirs = [(c["text"], float(c["timestamp"][0]), float(c["timestamp"][1])) for c in out["chunks"]]
    assert theirs == [(w.text, pytest.approx(w.start), pytest.approx(w.end)) for w in ours.words]


def test_pipeline_chunking_and_saved_folder(tmp_path, parts) -> None:
    model, processor = parts
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path), device="cpu")  # loads through the Auto classes
    audio = load_audio(FIXTURES / "utt2.flac")
    full = asr(audio)["text"]
    chunked = asr(audio, chunk_length_s=1.0, stride_length_s=0.2)["text"]
    assert isinstance(chunked, str) and len(chunked) > 0 and len(full) > 0
