"""The length grid (issue 33): inputs padded to a few lengths per octave give the unpadded logits."""

from __future__ import annotations

import sys
import time
from unittest import mock

import numpy as np
import pytest
import torch
from fixtures.decoding.tiny import FIXTURES, make_model, make_processor

from hf_w2v2.data.audio import load_audio, normalize_waveform
from hf_w2v2.inference import chunked
from hf_w2v2.inference.chunked import GRID_FRACTION, chunked_logits, grid_length, inference_logits
from hf_w2v2.inference.transcribe import Transcriber

HOP = 320  # samples per frame of every released checkpoint


def test_grid_lengths_are_few_and_close_above_the_input() -> None:
    lengths = range(16_000, 96_001, 7)  # 1 to 6 s at 16 kHz
    for n in lengths:
        padded = grid_length(n, HOP)
        assert padded % HOP == 0 and n <= padded < n + n / GRID_FRACTION
    assert len({grid_length(n, HOP) for n in lengths}) <= 24  # 150 clips meet at most 24 shapes, not 150
    assert [grid_length(n, HOP) for n in (1, 320, 321, 400)] == [320, 320, 640, 640]  # short: one hop


@pytest.fixture(scope="module")
def local_model() -> torch.nn.Module:
    return make_model(local=False, feat_extract_norm="layer", do_stable_layer_norm=True)  # attention and all


def test_a_clip_on_the_grid_gives_its_unpadded_logits(local_model) -> None:
    audio = torch.from_numpy(normalize_waveform(load_audio(FIXTURES / "utt1.flac")))[None]  # (1, T)
    assert grid_length(audio.shape[1], HOP) > audio.shape[1]  # the grid pads this clip
    plain = inference_logits(local_model, audio)
    on_grid = inference_logits(local_model, audio, grid=True)
    assert on_grid.shape == plain.shape
    torch.testing.assert_close(on_grid, plain, atol=1e-4, rtol=1e-4)
    # A padded batch with its mask: the valid frames of each item are unchanged too.
    short = audio[:, : audio.shape[1] // 2]
    batch = torch.zeros(2, audio.shape[1])
    batch[0], batch[1, : short.shape[1]] = audio[0], short[0]
    mask = (torch.arange(audio.shape[1]) < torch.tensor([[audio.shape[1]], [short.shape[1]]])).long()
    frames = inference_logits(local_model, short).shape[1]
    got = inference_logits(local_model, batch, mask, grid=True)
    assert got.shape == (2, *plain.shape[1:])
    torch.testing.assert_close(got[1, :frames], inference_logits(local_model, short)[0], atol=1e-4, rtol=1e-4)


def test_full_windows_stay_off_the_grid(local_model) -> None:
    """Windows of the chunk's length all share one shape already: only the shorter last one is padded."""
    audio = torch.from_numpy(normalize_waveform(load_audio(FIXTURES / "utt2.flac")))
    lengths: list[int] = []
    real = chunked.inference_logits

    def spy(model, windows, mask=None, bf16=False, grid=False):
        lengths.append(grid_length(windows.shape[1], HOP) if grid else windows.shape[1])
        return real(model, windows, mask, bf16, grid)

    with mock.patch.object(chunked, "inference_logits", spy):
        windowed = chunked_logits(local_model, audio, 9_600, 1_600, 1_600, grid=True)
    assert lengths[:-1] == [9_600] * (len(lengths) - 1) and lengths[-1] % HOP == 0
    plain = chunked_logits(local_model, audio, 9_600, 1_600, 1_600)
    torch.testing.assert_close(windowed, plain, atol=1e-4, rtol=1e-4)


def test_the_transcriber_puts_frame_local_models_on_the_grid(tmp_path, local_model) -> None:
    processor = make_processor(tmp_path, local_model.config)
    audio = load_audio(FIXTURES / "utt1.flac")
    transcriber = Transcriber(local_model, processor, device="cpu")
    assert transcriber.length_grid
    expected = inference_logits(local_model, torch.from_numpy(normalize_waveform(audio))[None])[0]
    torch.testing.assert_close(transcriber.logits(audio), expected, atol=1e-4, rtol=1e-4)
    # Group norm normalises over time (padding would change it); dynamic int8 scales by the whole input.
    group = make_model(feat_extract_norm="group", do_stable_layer_norm=False)
    assert not Transcriber(group, make_processor(tmp_path / "g", group.config), device="cpu").length_grid
    int8 = Transcriber(make_model(local=True), make_processor(tmp_path / "q"), device="cpu", precision="int8")
    assert not int8.length_grid
    bf16 = Transcriber(make_model(local=True), make_processor(tmp_path / "b"), device="cpu", precision="bf16")
    assert bf16.length_grid
    assert not Transcriber(local_model, processor, device="cpu", length_grid=False).length_grid
    assert np.isfinite(transcriber.logits(audio[:400]).numpy()).all()  # the shortest clip, one frame


@pytest.mark.parametrize("head", ["sequence", "xvector"])
def test_classifier_batches_on_the_grid_give_the_same_scores(head: str) -> None:
    """Classification and speaker embeddings pool over the mask: the grid's padding stays out of both."""
    from hf_w2v2.classify.inference import run_batches
    from hf_w2v2.models.classification import Wav2Vec2ForSequenceClassification
    from hf_w2v2.models.configuration import tiny
    from hf_w2v2.models.xvector import Wav2Vec2ForXVector

    torch.manual_seed(0)
    config = tiny(feat_extract_norm="layer", do_stable_layer_norm=True, num_labels=3)
    model = (Wav2Vec2ForXVector if head == "xvector" else Wav2Vec2ForSequenceClassification)(config).eval()
    rng = np.random.default_rng(0)
    lengths = (10_241, 5_121, 7_681, 6_401)  # just past a grid length: the grid pads each by 639-1,279 samples
    clips = [normalize_waveform(rng.standard_normal(n).astype(np.float32)) for n in lengths]
    assert all(grid_length(n, HOP) - n >= 639 for n in lengths)
    output = "embeddings" if head == "xvector" else "logits"
    plain = run_batches(model, clips, batch_size=3, output=output, length_grid=False)
    on_grid = run_batches(model, clips, batch_size=3, output=output)
    assert on_grid.shape == plain.shape == (4, plain.shape[1])
    # A random tiny model's scores are small (about 0.01): compare to their scale.
    assert float((on_grid - plain).abs().max()) <= 1e-3 * float(plain.abs().max())


def test_paths_are_timed_on_a_new_length_every_round() -> None:
    """A path that builds kernels per input shape must pay for it in the timing, as in transcription."""
    from hf_w2v2.inference.measurement import MEASURE_ROUNDS, shorter_cuts, time_paths

    probe = torch.randn(1, 16_000)
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def spy(name: str):
        def run(audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            seen[name].append(audio.shape[1])
            time.sleep(0.02)  # equal, so that neither is dropped as more than 2x slower than the other
            return audio

        return run

    time_paths({name: spy(name) for name in seen}, probe, MEASURE_ROUNDS)
    for lengths in seen.values():
        assert lengths[0] == 16_000 and len(set(lengths)) == len(lengths) == MEASURE_ROUNDS + 1  # warm-up, rounds
    assert [c.shape[1] for c in shorter_cuts(torch.zeros(1, 10), 3)] == [9, 8, 7]
    # At least a hop apart (a new number of frames), as measure() asks for.
    assert [c.shape[1] for c in shorter_cuts(torch.zeros(1, 1_000), 3, step=HOP)] == [680, 360, 40]


def test_optimize_runs_eager_paths_of_frame_local_models_on_the_grid(tmp_path) -> None:
    from hf_w2v2.inference.optimize import optimize

    model = make_model(local=False, feat_extract_norm="layer", do_stable_layer_norm=True)
    audio = torch.from_numpy(normalize_waveform(load_audio(FIXTURES / "utt1.flac")))[None]  # (1, T)
    fast = optimize(model, "fp32", cache=tmp_path / "grid")
    plain = optimize(model, "fp32", cache=tmp_path / "plain", length_grid=False)
    lengths = []
    model.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    expected = inference_logits(model, audio)
    lengths.clear()
    got = fast(audio).logits
    assert lengths[-1] == grid_length(audio.shape[1], HOP) > audio.shape[1]  # the model ran on the grid
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    plain(audio)
    assert lengths[-1] == audio.shape[1]
    assert fast._key() != plain._key()  # rankings timed with and without the grid are kept apart


def test_the_shortest_first_input_is_timed_without_cuts_below_its_receptive_field(tmp_path) -> None:
    from hf_w2v2.inference.measurement import shorter_cuts
    from hf_w2v2.inference.optimize import optimize
    from hf_w2v2.models.lengths import receptive_field

    model = make_model(local=False, feat_extract_norm="layer", do_stable_layer_norm=True)
    shortest = receptive_field(model.config.conv_kernel, model.config.conv_stride)
    assert [c.shape[1] for c in shorter_cuts(torch.zeros(1, shortest), 3, shortest)] == [shortest] * 3
    logits = optimize(model, "fp32", cache=tmp_path)(torch.randn(1, shortest)).logits  # measured on it
    assert logits.shape[1] == 1


def test_auto_pads_per_path_so_the_transcriber_hands_it_each_input_at_its_own_length(tmp_path, monkeypatch) -> None:
    """A recurring length must be seen as such: padding it on to the grid before ``auto`` would hand an
    OpenVINO path a masked input, and new lengths would look recurring."""
    from hf_w2v2.inference import machine

    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    model = make_model(local=False, feat_extract_norm="layer", do_stable_layer_norm=True)
    transcriber = Transcriber(model, make_processor(tmp_path, model.config), device="cpu", precision="auto")
    monkeypatch.setattr(sys.modules["hf_w2v2.inference.optimize"], "CPU_PATHS", ("fp32",))
    audio = load_audio(FIXTURES / "utt1.flac")
    expected = inference_logits(model, torch.from_numpy(normalize_waveform(audio))[None])[0]
    torch.testing.assert_close(transcriber.logits(audio), expected, atol=1e-4, rtol=1e-4)
    assert transcriber.length_grid and not transcriber._pads_to_grid  # fp32 runs on the grid, inside auto
    assert ((1, audio.shape[0]), False) in transcriber.model.seen  # the input's own length, no mask


def test_choose_path_checks_its_recordings(tmp_path, monkeypatch) -> None:
    from hf_w2v2.inference import machine

    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    model = make_model(local=True)
    auto = Transcriber(model, make_processor(tmp_path, model.config), device="cpu", precision="auto", chunk_s=1.0)
    with pytest.raises(ValueError, match="as many texts"):
        auto.choose_path([np.zeros(8_000, np.float32)], ["A", "B"])
    with pytest.raises(ValueError, match="one window"):
        auto.choose_path([np.zeros(32_000, np.float32)])  # 2 s, the window is 1 s
    with pytest.raises(ValueError, match="needs recordings"):
        auto.choose_path([])
    assert auto.model.choice is None  # nothing chosen on bad input
