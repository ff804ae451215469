"""High-level transcription: model folders with a saved decoder, files, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from fixtures.decoding.tiny import CORPUS, FIXTURES, VOCAB, make_model, make_processor, save_model_folder

from hf_w2v2.data.audio import find_audio_files, load_audio
from hf_w2v2.decoding.greedy import greedy_decode
from hf_w2v2.inference.transcribe import Transcriber


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    save_model_folder(directory)
    return directory


@pytest.fixture
def bad_batch(tmp_path) -> list[str]:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(200))
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16_000)
    return [str(FIXTURES / "utt1.flac"), str(corrupt), str(empty), str(FIXTURES / "utt2.flac")]


def test_greedy_transcription_of_files(model_dir, bad_batch: list[str]) -> None:
    transcriber = Transcriber.from_pretrained(model_dir, device="cpu")
    assert transcriber.decoder is None
    results = transcriber.transcribe_files(bad_batch, progress=False)
    assert [r.path for r in results] == bad_batch  # order kept
    assert [r.error is None for r in results] == [True, False, False, True]
    assert "corrupt.flac" in results[1].error and "no samples" in results[2].error
    assert results[0].duration == pytest.approx(1.51, abs=0.01)
    expected = transcriber.logits(load_audio(bad_batch[0]))
    assert results[0].transcription.text == greedy_decode(expected, transcriber.alphabet)[0].text


def test_saved_decoder_is_restored_with_the_model(tmp_path, model_dir) -> None:
    pytest.importorskip("pyctcdecode")
    pytest.importorskip("kenlm")
    from hf_w2v2.decoding.arpa import build_arpa
    from hf_w2v2.decoding.beam import BeamSearchDecoder

    folder = tmp_path / "with_lm"
    shutil.copytree(model_dir, folder)
    build_arpa(CORPUS, tmp_path / "lm.arpa", order=2, progress=False)
    processor = make_processor(tmp_path / "proc")
    BeamSearchDecoder.from_tokenizer(processor, lm_path=tmp_path / "lm.arpa", alpha=0.9, beta=2.0).save_pretrained(
        folder
    )
    transcriber = Transcriber.from_pretrained(folder, device="cpu")  # one call: model + processor + decoder
    assert transcriber.decoder is not None and (transcriber.decoder.alpha, transcriber.decoder.beta) == (0.9, 2.0)
    result = transcriber.transcribe_files([str(FIXTURES / "utt2.flac")], progress=False)[0]
    assert result.error is None and result.transcription.score is not None
    assert Transcriber.from_pretrained(folder, use_lm=False).decoder is None
    with pytest.raises(FileNotFoundError, match="language model file not found"):
        Transcriber.from_pretrained(folder, lm_path=tmp_path / "missing.arpa")


def test_chunked_transcript_equals_unchunked_on_a_short_file(model_dir) -> None:
    audio = load_audio(FIXTURES / "utt1.flac")  # 1.5 s
    whole = Transcriber.from_pretrained(model_dir, chunk_s=None).transcribe_array(audio)
    windowed = Transcriber.from_pretrained(model_dir, chunk_s=20.0).transcribe_array(audio)
    assert windowed.text == whole.text and windowed.words == whole.words


def test_windows_smaller_than_the_file_stitch_exactly(tmp_path) -> None:
    model = make_model(local=True)
    processor = make_processor(tmp_path, model.config)
    audio = load_audio(FIXTURES / "utt2.flac")
    whole = Transcriber(model, processor, chunk_s=None)
    windowed = Transcriber(model, processor, chunk_s=0.6, stride_s=0.2, batch_size=3)
    torch.testing.assert_close(windowed.logits(audio), whole.logits(audio), atol=1e-5, rtol=1e-5)
    assert windowed.transcribe_array(audio).text == whole.transcribe_array(audio).text


def test_bad_arrays_and_mismatches(tmp_path) -> None:
    model = make_model()
    processor = make_processor(tmp_path, model.config)
    transcriber = Transcriber(model, processor)
    with pytest.raises(ValueError, match="non-empty"):
        transcriber.transcribe_array(np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError, match="too short"):
        transcriber.transcribe_array(np.zeros(100, dtype=np.float32))
    with pytest.raises(ValueError, match="8000 Hz"):
        transcriber.transcribe_array(np.zeros(8000, dtype=np.float32), sampling_rate=8000)
    with pytest.raises(ValueError, match="model outputs 33 classes but the tokenizer has 30"):
        Transcriber(make_model(vocab_size=33), processor)
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        Transcriber.from_pretrained(tmp_path / "nothing")
    pytest.importorskip("pyctcdecode")
    from hf_w2v2.decoding.alphabet import CTCAlphabet
    from hf_w2v2.decoding.beam import BeamSearchDecoder

    shuffled = dict(zip(VOCAB, [0, 1, 2, *reversed(range(3, len(VOCAB)))]))  # same tokens, other ids
    with pytest.raises(ValueError, match="decoder's alphabet differs"):
        Transcriber(model, processor, decoder=BeamSearchDecoder(CTCAlphabet.from_vocab(shuffled)))


def test_find_audio_files(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.flac", "a/b/y.WAV", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = find_audio_files([tmp_path / "a", tmp_path / "a" / "x.flac"])
    assert found == [str(tmp_path / "a/x.flac"), str(tmp_path / "a/b/y.WAV")]  # no repeat of x.flac
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        find_audio_files([tmp_path / "missing.flac"])
