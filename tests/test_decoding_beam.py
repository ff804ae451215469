"""n-gram beam search through pyctcdecode: LM fusion, hotwords, timestamps, save/load, tuning."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("pyctcdecode")
pytest.importorskip("kenlm")

from fixtures.decoding.tiny import CORPUS, VOCAB, alphabet

from hf_w2v2.decoding.arpa import build_arpa
from hf_w2v2.decoding.beam import BeamSearchDecoder, BeamSettings
from hf_w2v2.decoding.greedy import greedy_decode
from hf_w2v2.decoding.synthetic import SimulatedAcoustics, synthetic_logits
from hf_w2v2.decoding.tuning import AlphaBetaSearch, tune_alpha_beta
from hf_w2v2.text.error_rates import word_error_rate

SENTENCES = [line for line in CORPUS.read_text().splitlines() if 4 <= len(line.split()) <= 12][:24]


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("lm") / "lm3.arpa"
    build_arpa(CORPUS, path, order=3, progress=False)
    return str(path)


@pytest.fixture(scope="module")
def noisy() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [synthetic_logits(s, alphabet(), SimulatedAcoustics(confusion=0.15), generator=g) for s in SENTENCES]


def test_lm_beats_greedy_on_confused_logits(lm_path: str, noisy: list[torch.Tensor]) -> None:
    greedy = [greedy_decode(x, alphabet())[0].text for x in noisy]
    decoder = BeamSearchDecoder(alphabet(), lm_path=lm_path, alpha=0.5, beta=1.0, beam_width=32)
    beam = [t.text for t in decoder.decode_batch(noisy)]
    greedy_wer, beam_wer = word_error_rate(SENTENCES, greedy), word_error_rate(SENTENCES, beam)
    assert greedy_wer > 0.2
    assert beam_wer < 0.5 * greedy_wer


def test_token_pruning_bounds_what_the_lm_can_choose(lm_path: str, noisy: list[torch.Tensor]) -> None:
    # Only each frame's best character may be tried: the LM has nothing to re-rank, so the
    # beam returns the greedy transcript; with pyctcdecode's defaults the LM changes it.
    greedy = [greedy_decode(x, alphabet())[0].text for x in noisy]
    strict = BeamSearchDecoder(alphabet(), lm_path=lm_path, alpha=1.0, beta=1.0, token_min_logp=-1e-6)
    assert [" ".join(t.text.split()) for t in strict.decode_batch(noisy)] == [" ".join(g.split()) for g in greedy]
    loose = BeamSearchDecoder(
        alphabet(), lm_path=lm_path, alpha=1.0, beta=1.0, token_min_logp=-20.0, beam_prune_logp=-30.0, beam_width=8
    )
    assert loose.token_min_logp == -20.0 and loose.beam_prune_logp == -30.0
    loose_wer = word_error_rate(SENTENCES, [t.text for t in loose.decode_batch(noisy)])
    assert loose_wer < word_error_rate(SENTENCES, greedy)


def test_word_timestamps_match_greedy_on_clean_logits(lm_path: str) -> None:
    logits = synthetic_logits(
        "AND GOD SAID", alphabet(), SimulatedAcoustics(frames_per_char=4), generator=torch.Generator().manual_seed(1)
    )
    beam = BeamSearchDecoder(alphabet(), lm_path=lm_path).decode(logits)
    greedy = greedy_decode(logits, alphabet())[0]
    assert beam.text == greedy.text == "AND GOD SAID"
    assert [(w.text, w.start_frame, w.end_frame) for w in beam.words] == [
        (w.text, w.start_frame, w.end_frame) for w in greedy.words
    ]
    assert beam.words[1].start == pytest.approx(beam.words[1].start_frame * 0.02)
    assert beam.score is not None


def test_hotwords_pull_the_beam() -> None:
    logits = synthetic_logits("THE CAT", alphabet(), SimulatedAcoustics(noise=0.0))
    c_frame = 5 * 3  # sixth symbol of "THE|CAT" at 3 frames per symbol, after one blank symbol
    logits[c_frame, VOCAB["K"]] = logits[c_frame, VOCAB["C"]] + 0.5
    decoder = BeamSearchDecoder(alphabet())  # beam search without LM
    assert decoder.decode(logits).text == "THE KAT"
    assert decoder.decode(logits, hotwords=["CAT"]).text == "THE CAT"
    assert decoder.decode(logits, hotwords=["CAT"], settings=BeamSettings(hotword_weight=0.0)).text == "THE KAT"


def test_pool_gives_the_sequential_results(lm_path: str, noisy: list[torch.Tensor]) -> None:
    decoder = BeamSearchDecoder(alphabet(), lm_path=lm_path, beam_width=16)
    sequential = decoder.decode_batch(noisy[:6])
    pooled = decoder.decode_batch(noisy[:6], num_processes=2)
    assert [t.text for t in pooled] == [t.text for t in sequential]
    weights = BeamSettings(alpha=3.0, beta=-2.0)  # workers must see this call's parameters
    assert [t.text for t in decoder.decode_batch(noisy[:6], settings=weights, num_processes=2)] == [
        t.text for t in decoder.decode_batch(noisy[:6], settings=weights)
    ]
    assert (decoder.alpha, decoder.beta) == (0.5, 1.0)  # per call: the decoder itself is unchanged
    assert [t.text for t in decoder.decode_batch(noisy[:6])] == [t.text for t in sequential]


def test_save_and_restore_with_the_model(tmp_path, lm_path: str, noisy: list[torch.Tensor]) -> None:
    decoder = BeamSearchDecoder(
        alphabet(),
        lm_path=lm_path,
        alpha=0.7,
        beta=1.5,
        beam_width=24,
        token_min_logp=-12.0,
        beam_prune_logp=-25.0,
        tuning={"alpha": 0.7, "beta": 1.5, "wer": 0.1},
    )
    decoder.save_pretrained(tmp_path)
    assert sorted(p.name for p in (tmp_path / "language_model").iterdir()) == ["attrs.json", "lm3.arpa", "unigrams.txt"]
    assert json.loads((tmp_path / "alphabet.json").read_text())["labels"][:3] == ["", "⁇", " "]
    restored = BeamSearchDecoder.from_pretrained(tmp_path)
    assert (restored.alpha, restored.beta, restored.beam_width) == (0.7, 1.5, 24)
    assert (restored.token_min_logp, restored.beam_prune_logp) == (-12.0, -25.0)
    assert restored.alphabet == decoder.alphabet and restored.tuning == decoder.tuning
    assert [t.text for t in restored.decode_batch(noisy[:4])] == [t.text for t in decoder.decode_batch(noisy[:4])]
    # pyctcdecode's own loader reads the same layout (what Wav2Vec2ProcessorWithLM used)
    import pyctcdecode

    assert pyctcdecode.BeamSearchDecoderCTC.load_from_dir(str(tmp_path)) is not None
    restored.save_pretrained(tmp_path, BeamSettings(alpha=0.2, beam_prune_logp=-15.0))  # re-tuned, saved in place
    again = BeamSearchDecoder.from_pretrained(tmp_path)
    assert (again.alpha, again.beta, again.token_min_logp, again.beam_prune_logp) == (0.2, 1.5, -12.0, -15.0)
    BeamSearchDecoder(alphabet()).save_pretrained(tmp_path)  # no LM: the LM folder goes
    assert not (tmp_path / "language_model").exists() and not BeamSearchDecoder.from_pretrained(tmp_path).has_lm


def test_tuning_picks_and_records_the_best(lm_path: str, noisy: list[torch.Tensor]) -> None:
    decoder = BeamSearchDecoder(alphabet(), lm_path=lm_path, beam_width=8)
    grid = AlphaBetaSearch(alphas=(0.0, 0.5, 1.0), betas=(0.0, 1.0))
    result = tune_alpha_beta(decoder, noisy[:8], SENTENCES[:8], grid, progress=False)
    assert len(result.trials) == 6
    assert result.wer == min(t["wer"] for t in result.trials)
    assert result.wer < next(t["wer"] for t in result.trials if t["alpha"] == 0.0 and t["beta"] == 0.0)
    assert (decoder.alpha, decoder.beta) == (0.5, 1.0) and decoder.tuning is None  # tuning changes no decoder
    draws = AlphaBetaSearch(search="random", n_trials=3, seed=7)
    random_a = tune_alpha_beta(decoder, noisy[:2], SENTENCES[:2], draws, progress=False)
    random_b = tune_alpha_beta(decoder, noisy[:2], SENTENCES[:2], draws, progress=False)
    assert random_a.trials == random_b.trials
    assert all(0.0 <= t["alpha"] <= 2.0 for t in random_a.trials)


def test_tuning_warns_when_the_winner_is_on_the_grid_edge(lm_path: str, noisy: list[torch.Tensor], caplog) -> None:
    decoder = BeamSearchDecoder(alphabet(), lm_path=lm_path, beam_width=4)
    with caplog.at_level("WARNING", logger="hf_w2v2.decoding.tuning"):
        tune_alpha_beta(
            decoder, noisy[:2], SENTENCES[:2], AlphaBetaSearch(alphas=(0.5,), betas=(0.0, 1.0)), progress=False
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any("best beta" in m and "edge" in m for m in messages)  # 2 values: every winner is an edge
    assert not any("best alpha" in m for m in messages)  # a single value is not a range


def test_missing_lm_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="language model file not found: .*nope.arpa"):
        BeamSearchDecoder(alphabet(), lm_path=tmp_path / "nope.arpa")
    with pytest.raises(FileNotFoundError, match="no saved decoder"):
        BeamSearchDecoder.from_pretrained(tmp_path)
    (tmp_path / "language_model").mkdir()
    (tmp_path / "alphabet.json").write_text(json.dumps({"labels": list(alphabet().labels), "is_bpe": False}))
    with pytest.raises(FileNotFoundError, match="incomplete language model folder"):
        BeamSearchDecoder.from_pretrained(tmp_path)


def test_lm_alphabet_mismatch(tmp_path) -> None:
    lower = tmp_path / "lower.txt"
    lower.write_text(CORPUS.read_text().lower())
    build_arpa(lower, tmp_path / "lower.arpa", order=2, progress=False)
    with pytest.raises(ValueError, match="does not match the CTC vocabulary.*upper-case"):
        BeamSearchDecoder(alphabet(), lm_path=tmp_path / "lower.arpa")


def test_logits_of_the_wrong_vocabulary_size(lm_path: str) -> None:
    decoder = BeamSearchDecoder(alphabet(), lm_path=lm_path)
    with pytest.raises(ValueError, match="logits have 33 classes but the decoder alphabet has 30"):
        decoder.decode(torch.randn(20, 33))
    with pytest.raises(ValueError, match=r"must be \(F, V\)"):
        decoder.decode(torch.randn(2, 20, 30))
