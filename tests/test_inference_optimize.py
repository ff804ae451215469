"""optimize(): the measured choice of an inference path, its cache, accuracy guard and fallbacks;
the feature encoder's measured conv kernel. Functional only: no timing is asserted."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.concurrency import at_once

from hf_w2v2 import files
from hf_w2v2.inference import machine
from hf_w2v2.inference.measurement import Choice, PathResult
from hf_w2v2.inference.optimize import optimize
from hf_w2v2.models import feature_encoder as FE
from hf_w2v2.models.configuration import tiny
from hf_w2v2.models.ctc import Wav2Vec2ForCTC

OPT = importlib.import_module("hf_w2v2.inference.optimize")  # the module (the package exports the function)
MEAS = importlib.import_module("hf_w2v2.inference.measurement")
LOGS = "hf_w2v2.inference"  # the loggers of optimize and measurement
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
HAS_OPENVINO = all(importlib.util.find_spec(m) for m in ("openvino", "nncf"))
HAS_TORCHAO = importlib.util.find_spec("torchao") is not None
TESTS = Path(__file__).resolve().parent
FAST_PATHS = ("fp32", "fp32-matmul", "fp32-conv1d", "fp32-channels-major", "int8")


def make_model(norm: str = "layer") -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    config = tiny(vocab_size=12, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    return Wav2Vec2ForCTC(config).eval()


def clips(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    generator = np.random.default_rng(seed)
    return [generator.standard_normal(4000 + 800 * i).astype(np.float32) for i in range(n)]


@pytest.fixture
def fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OPT, "CPU_PATHS", FAST_PATHS)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_every_conv_kernel_gives_the_same_features(norm: str) -> None:
    encoder = make_model(norm).base_encoder().feature_extractor
    audio = torch.randn(2, 5000)
    with torch.no_grad():
        reference = encoder(audio, kernel="conv1d")
        for kernel in FE.CONV_KERNELS:
            torch.testing.assert_close(encoder(audio, kernel=kernel), reference, atol=1e-5, rtol=1e-4)
            with FE.use_inference_kernel(kernel):
                assert FE.inference_kernel(encoder, audio[:, None]) == kernel


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_tiled_kernel_matches_across_tiles_items_and_a_cached_prefix(norm: str, monkeypatch) -> None:
    """Several tiles (the last one short), items of their own statistics (one with a DC offset), and
    blocks run from a cached prefix: the tiled kernel gives the channels-major stack's features."""
    encoder = make_model(norm).base_encoder().feature_extractor
    monkeypatch.setattr(FE, "TILE_SAMPLES", 700)  # a few output frames per tile for the tiny encoder
    audio = torch.randn(2, 9000) * torch.tensor([[1.0], [0.01]]) + torch.tensor([[0.0], [0.5]])
    with torch.no_grad():
        reference = encoder(audio, kernel="channels-major")
        torch.testing.assert_close(encoder(audio, kernel="tiled"), reference, atol=1e-5, rtol=1e-4)
        for start in (2, 4):  # inside the tiled blocks, and past them
            prefix = encoder.prefix(audio, start)
            torch.testing.assert_close(encoder.forward_from(prefix, start, "tiled"), reference, atol=1e-5, rtol=1e-4)


def test_inference_kernel_is_measured_once_and_can_be_forced(monkeypatch, caplog) -> None:
    encoder = make_model().base_encoder().feature_extractor
    FE.clear_inference_kernels()
    with caplog.at_level(logging.INFO, logger=FE.__name__):
        first = FE.inference_kernel(encoder, torch.randn(1, 1, 4000))
        assert FE.inference_kernel(encoder, torch.randn(1, 1, 8000)) == first
    assert first in FE.CONV_KERNELS and sum("inference kernel" in r.message for r in caplog.records) == 1
    monkeypatch.setenv(FE.KERNEL_ENV, "matmul")
    assert FE.inference_kernel(encoder, torch.randn(1, 1, 4000)) == "matmul"
    monkeypatch.setenv(FE.KERNEL_ENV, "winograd")
    with pytest.raises(ValueError, match="HF_W2V2_CONV_KERNEL"):
        FE.inference_kernel(encoder, torch.randn(1, 1, 4000))


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_a_batch_run_item_by_item_gives_the_batchs_features(norm: str, monkeypatch) -> None:
    """Items of their own statistics (one with a DC offset, one all padding at the end): running the
    stack one item at a time gives the whole batch's features with every kernel, and the measured
    batching (or the forced one) changes nothing either."""
    encoder = make_model(norm).base_encoder().feature_extractor
    audio = torch.randn(3, 6000) * torch.tensor([[1.0], [0.01], [2.0]]) + torch.tensor([[0.0], [0.5], [0.0]])
    audio[2, 3000:] = 0.0
    with torch.no_grad():
        reference = encoder(audio, kernel="channels-major")
        for kernel in FE.CONV_KERNELS:
            items = encoder._forward_items(audio[:, None], 0, kernel)
            assert items.shape == reference.shape and items.transpose(1, 2).is_contiguous()  # frames-major
            torch.testing.assert_close(items, reference, atol=1e-5, rtol=1e-4)
        for batching in FE.BATCHINGS:
            monkeypatch.setenv(FE.BATCHING_ENV, batching)
            torch.testing.assert_close(encoder(audio), reference, atol=1e-5, rtol=1e-4)


def test_batching_is_measured_once_per_setting_and_can_be_forced(monkeypatch, caplog) -> None:
    encoder = make_model().base_encoder().feature_extractor
    FE.clear_inference_kernels()
    with caplog.at_level(logging.INFO, logger=FE.__name__), torch.no_grad():
        encoder(torch.randn(1, 4000))  # one item: nothing to decide
        assert not any("batches" in r.message for r in caplog.records)
        encoder(torch.randn(2, 4000))
        encoder(torch.randn(2, 6000))  # the same setting
        assert sum("batches" in r.message for r in caplog.records) == 1
    kernel = FE.inference_kernel(encoder, torch.randn(1, 1, 4000))
    assert FE.inference_batching(encoder, torch.randn(2, 1, 4000), 0, kernel) in FE.BATCHINGS
    monkeypatch.setenv(FE.BATCHING_ENV, "items")
    assert FE.inference_batching(encoder, torch.randn(2, 1, 4000), 0, kernel) == "items"
    monkeypatch.setenv(FE.BATCHING_ENV, "interleaved")
    with pytest.raises(ValueError, match=FE.BATCHING_ENV):
        FE.inference_batching(encoder, torch.randn(2, 1, 4000), 0, kernel)


def test_openvino_settings_under_an_instruction_set_limit(monkeypatch) -> None:
    """OpenVINO crashes under ONEDNN_MAX_CPU_ISA on bf16 it assumes and on GroupNorm: f32 is asked for
    where bf16 would be emulated, and a group-norm encoder is refused with the reason."""
    ov_int8 = importlib.import_module("hf_w2v2.inference.openvino_int8")
    for name in machine.ISA_LIMIT_ENV:
        monkeypatch.delenv(name, raising=False)
    ov_int8.check_isa_limit(make_model("group"))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    ov_int8.check_isa_limit(make_model("layer"))
    with pytest.raises(RuntimeError, match="ONEDNN_MAX_CPU_ISA=AVX2"):
        ov_int8.check_isa_limit(make_model("group"))
    monkeypatch.setattr(ov_int8, "cpu_has_native_bf16", lambda: False)
    assert ov_int8.compile_config(2) == {
        "INFERENCE_NUM_THREADS": 2,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    monkeypatch.setattr(ov_int8, "cpu_has_native_bf16", lambda: True)
    assert "INFERENCE_PRECISION_HINT" not in ov_int8.compile_config(2)


def test_optimize_returns_the_models_logits(tmp_path, fast_paths) -> None:
    model = make_model()
    fast = optimize(model, calibration=clips(), cache=tmp_path)
    audio = torch.as_tensor(clips(1, seed=1)[0])[None]
    logits = fast(audio).logits
    with torch.no_grad():
        expected = model(audio).logits
    assert fast.chosen in FAST_PATHS and fast.choice is not None
    tolerance = 0.5 if fast.chosen == "int8" else 1e-4  # int8 moves logits; the guard checked its tokens
    torch.testing.assert_close(logits, expected, atol=tolerance, rtol=0)
    assert fast.config is model.config and fast.frame_lengths is not None  # used like the model
    assert {r.name for r in fast.choice.results} == set(FAST_PATHS)
    # only the chosen paths' runners are kept (all the passing ones were: BASE held 1.5 GB more)
    assert set(fast.runners) <= {fast.chosen, fast.chosen_recurring, "fp32"}
    assert fast.chosen in fast.runners and len({r.name for r in fast.choice.results if r.error is None}) > 2


def test_the_choice_is_cached_and_never_reused_elsewhere(tmp_path, fast_paths, monkeypatch, caplog) -> None:
    model = make_model()
    audio = torch.as_tensor(clips(1)[0])[None]
    optimize(model, cache=tmp_path)(audio)
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["ranking"][-1] == "fp32"
    with caplog.at_level(logging.INFO, logger=LOGS):
        optimize(model, cache=tmp_path)(audio)
    assert any("cached ranking" in r.message for r in caplog.records)
    key = machine.cache_key(model, torch.device("cpu"), None, "auto")
    cpu = machine.cpu_info()
    monkeypatch.setattr(machine, "cpu_info", lambda: {**cpu, "flags": [*cpu["flags"], "amx_int8"]})
    assert machine.cache_key(model, torch.device("cpu"), None, "auto") != key
    monkeypatch.setattr(machine, "cpu_info", lambda: cpu)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the same CPU limited to its AVX2 code
    assert machine.cache_key(model, torch.device("cpu"), None, "auto") != key
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert machine.cache_key(model, torch.device("cpu"), None, "auto") == key
    versions = machine.library_versions()
    monkeypatch.setattr(machine, "library_versions", lambda: {**versions, "onnxruntime": "0.0.1"})
    assert machine.cache_key(model, torch.device("cpu"), None, "auto") != key
    optimize(model, cache=tmp_path)(audio)  # measured again: a second ranking file
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_cached_choice_brings_the_kernels_measured_with_it_and_the_weights_are_hashed_once(
    tmp_path, monkeypatch
) -> None:
    """A process that reads a cached choice takes the conv and linear kernels measured with it instead of
    timing them again (BASE: 0.9 s of its first call), and hashes the weights for the cache key once per call
    (0.2 s each for BASE); a kernel it does not know is timed, not run."""
    model, audio = make_model("group"), torch.as_tensor(clips(1)[0])[None]
    FE.clear_inference_kernels()
    optimize(model, "fp32", cache=tmp_path)(audio)
    file = next(tmp_path.glob("*.json"))
    kept = json.loads(file.read_text())["kernels"]
    conv = kept[FE.KERNEL_ENV]
    assert len(conv) == 1 and set(conv.values()) <= set(FE.CONV_KERNELS)

    FE.clear_inference_kernels()  # as in a new process
    real_time_kernels, real_key = FE._time_kernels, OPT.cache_key
    timed, hashed = [], []
    monkeypatch.setattr(FE, "_time_kernels", lambda *args: timed.append(args) or real_time_kernels(*args))
    monkeypatch.setattr(OPT, "cache_key", lambda *args: hashed.append(args) or real_key(*args))
    fast = optimize(model, "fp32", cache=tmp_path)
    logits = fast(audio).logits
    assert fast.choice is not None and fast.choice.kernels == kept
    assert not timed and FE.CHOICE.measured() == conv and len(hashed) == 1  # the cached file, the graphs' folder
    torch.testing.assert_close(logits, model(audio).logits)
    fast(audio)
    assert len(hashed) == 1  # the path is built: no key needed

    FE.clear_inference_kernels()
    file.write_text(
        json.dumps({**json.loads(file.read_text()), "kernels": {FE.KERNEL_ENV: dict.fromkeys(conv, "fft")}})
    )
    optimize(model, "fp32", cache=tmp_path)(audio)
    assert len(timed) == 1 and FE.CHOICE.measured()[next(iter(conv))] in FE.CONV_KERNELS


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime")
def test_a_start_that_reads_the_choice_removes_the_graphs_of_paths_not_chosen(tmp_path, monkeypatch, caplog) -> None:
    """The measurement builds every path's graphs (BASE: 1 GB); the next start keeps the chosen path's only,
    and builds that path from its own graph (not from the fp32 graph it was quantised from)."""
    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    rank_paths(monkeypatch, lambda runners, *args: {name: 1.0 if name == "fp32" else 0.5 for name in runners})
    fast = optimize(model, "onnx-int8", cache=tmp_path, max_cer_change=float("inf"))  # random weights
    fast(audio)
    assert fast.chosen == "onnx-int8"
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "timings"]
    graphs = lambda: {p.name for p in folder.iterdir()} - {OPT.MEASURING_LOCK}
    assert graphs() == {"fp32-unmasked.onnx", "onnx-int8-unmasked.onnx"}
    later = folder / "openvino-int8-matmul.xml"  # as if another process were building it now
    later.write_text("<net/>")
    os.utime(later, (time.time() + 60, time.time() + 60))
    with caplog.at_level(logging.INFO, logger=LOGS):
        again = optimize(model, "onnx-int8", cache=tmp_path, max_cer_change=float("inf"))
        torch.testing.assert_close(again(audio).logits, fast(audio).logits)
    assert "removed the graphs of paths not chosen" in caplog.text and again.chosen == "onnx-int8"
    assert graphs() == {"onnx-int8-unmasked.onnx", later.name}


def test_a_choice_whose_guard_could_check_nothing_is_not_kept(tmp_path, fast_paths, monkeypatch, caplog) -> None:
    """A first input on which fp32 gives no token (a warm-up call on zeros, silence) guards nothing: every path
    that gives none passes. Such a choice serves its process and is not cached for every later start."""
    model = make_model()
    with torch.no_grad():
        model.lm_head.bias[model.config.pad_token_id] = 1e4  # blank everywhere: no token for any input
    rank_paths(monkeypatch, lambda runners, *args: {name: 1.0 if name == "fp32" else 0.5 for name in runners})
    with caplog.at_level(logging.WARNING, logger=LOGS):
        fast = optimize(model, cache=tmp_path)
        fast(torch.zeros(1, 4000))
    assert fast.chosen != "fp32" and fast.choice is not None and fast.choice.blind
    assert "no path could be checked" in caplog.text and not list(tmp_path.glob("*.json"))
    assert list((tmp_path / "timings").glob("*.json"))  # the speeds stand, whatever the clips
    optimize(model, cache=tmp_path, max_cer_change=float("inf"))(torch.zeros(1, 4000))  # no guard wanted
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_a_damaged_measurement_file_is_measured_again(tmp_path, fast_paths, caplog) -> None:
    """A choice or timings file cut short (a process killed while writing it) or of another shape: a warning,
    a new measurement, and the file written whole again."""
    model = make_model()
    audio = torch.as_tensor(clips(1)[0])[None]
    optimize(model, cache=tmp_path)(audio)
    (choice_file,) = tmp_path.glob("*.json")
    (timings_file,) = (tmp_path / "timings").glob("*.json")
    whole = json.loads(choice_file.read_text())
    damaged = {
        "cut short": choice_file.read_text()[:40],
        "not an object": "[]",
        "no fp32 last": json.dumps({**whole, "ranking": ["int8"]}),
        "no results": json.dumps({k: v for k, v in whole.items() if k != "results"}),
    }
    for why, text in damaged.items():
        choice_file.write_text(text)
        timings_file.write_text(text)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=LOGS):
            fast = optimize(model, cache=tmp_path)
            fast(audio)
        assert "could not read the measurement" in caplog.text, why
        assert ", measured;" in caplog.text and fast.choice is not None and fast.choice.ranking[-1] == "fp32", why
        assert json.loads(choice_file.read_text())["ranking"][-1] == "fp32", why  # written whole again
        assert "seconds" in json.loads(timings_file.read_text()), why


def test_a_build_interrupted_or_killed_leaves_no_partial_file(tmp_path, monkeypatch, caplog) -> None:
    """Ctrl-C (or a full disk) while a graph is written: its partial file is removed at once. A process killed
    mid-build (SIGKILL, out of memory) cannot: its partial files are removed at the model's next first use,
    and only theirs (a live process's, or another host's sharing the cache, are left)."""
    from hf_w2v2.inference import paths

    def export_cut_short(model, part, attention_mask=True):
        Path(part).write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(paths, "export_onnx", export_cut_short)
    (tmp_path / "graphs").mkdir()
    with pytest.raises(KeyboardInterrupt):
        paths.onnx_file("onnx", make_model(), [], str(tmp_path / "graphs"), masked=False)
    assert list((tmp_path / "graphs").iterdir()) == []  # was: fp32-unmasked.part-HOST-PID-THREAD.onnx
    with files.written_whole(str(tmp_path / "m.xml"), companions=(".bin",)) as part:
        Path(part).write_text("xml")
        Path(part.removesuffix(".xml") + ".bin").write_text("bin")
    assert sorted(p.name for p in tmp_path.glob("m.*")) == ["m.bin", "m.xml"]

    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    optimize(model, "fp32", cache=tmp_path / "cache")(audio)
    (folder,) = [d for d in (tmp_path / "cache").iterdir() if d.is_dir() and d.name != "timings"]
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = Path(
        files.partial_name(str(folder / "fp32.onnx")).replace(f"-{os.getpid()}-", f"-{ended.stdout.strip()}-")
    )
    live = Path(files.partial_name(str(folder / "onnx-int8.onnx")))
    elsewhere = folder / "pt2e-int8.part-another-host-1-1.pt2"
    for leftover in (killed, live, elsewhere):
        leftover.write_bytes(b"half")
    with caplog.at_level(logging.INFO, logger=LOGS):
        optimize(model, "fp32", cache=tmp_path / "cache")(audio)
    assert not killed.exists() and live.exists() and elsewhere.exists()
    assert f"removed 1 partial files of builds that did not end: {killed.name}" in caplog.text


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT: main thread")
def test_a_ctrl_c_that_a_backend_turns_into_its_own_error_stops_the_measurement(
    tmp_path, fast_paths, monkeypatch
) -> None:
    """OpenVINO's converter catches the KeyboardInterrupt of its Python callbacks and raises OpConversionFailure:
    that was recorded as "the path cannot run here", cached for the model (and, in the timings, for every model
    of its architecture), and the Ctrl-C was lost (the run went on)."""
    import signal

    real = OPT.build_path

    def build(name, model, calibration, folder):
        if name == "int8":
            try:
                os.kill(os.getpid(), signal.SIGINT)
                signal.sigtimedwait([], 1.0)  # (Python's handler raises at once; this only waits should it not)
            except KeyboardInterrupt:
                raise RuntimeError("Model wasn't fully converted: KeyboardInterrupt") from None  # as OpenVINO
        return real(name, model, calibration, folder)

    monkeypatch.setattr(OPT, "build_path", build)
    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    with pytest.raises(KeyboardInterrupt):
        optimize(model, cache=tmp_path)(audio)
    assert list(tmp_path.glob("*.json")) == [] and list(tmp_path.glob("timings/*.json")) == []  # nothing recorded
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime")
def test_a_nearly_full_disk_skips_the_graph_paths_and_keeps_no_choice(tmp_path, monkeypatch, caplog) -> None:
    """Building graphs on a full disk failed (OSError, or an abort of the whole process in torch's package
    writer) and the failures were cached: the paths left out for good once space was freed."""
    import shutil

    monkeypatch.setattr(OPT, "CPU_PATHS", ("fp32", "onnx"))
    real = shutil.disk_usage
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: real(path)._replace(free=10 * files.MB))
    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    with caplog.at_level(logging.WARNING, logger=LOGS):
        fast = optimize(model, cache=tmp_path)
        fast(audio)
    assert fast.chosen == "fp32" and "onnx skipped: OSError: [Errno 28] not enough space" in caplog.text
    assert "10 MB free" in caplog.text and "is not kept" in caplog.text
    assert (
        list(tmp_path.glob("*.json")) == list(tmp_path.glob("timings/*.json")) == list(tmp_path.rglob("*.onnx")) == []
    )
    monkeypatch.setattr(files.shutil, "disk_usage", real)  # space freed: measured again, and kept
    again = optimize(model, cache=tmp_path)
    again(audio)
    assert again.choice is not None and {r.name: r.error for r in again.choice.results}["onnx"] is None
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_the_paths_are_measured_in_a_child_process_and_the_choice_read_back(
    tmp_path, monkeypatch, caplog, capfd
) -> None:
    """Outside the tests a child process measures (measure_child: the memory the builders keep, BASE 2 GB, and
    their crashes go with it); this process reads its cached choice. A child that fails measures here instead;
    one killed by a signal leaves fp32, not kept."""
    monkeypatch.delenv(OPT.MEASURE_ENV)  # as outside the tests
    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast = optimize(model, "int8", cache=tmp_path)  # a named path: two candidates, a quick child
        logits = fast(audio).logits
    assert "measured in a child process" in caplog.text and ", measured;" not in caplog.text
    assert fast.choice is not None and {r.name for r in fast.choice.results} == {"int8", "fp32"}
    assert len(list(tmp_path.glob("*.json"))) == 1 and logits.shape == model(audio).logits.shape
    assert set(fast.runners) <= {"int8", "fp32"}  # only the chosen path was built here
    child_stderr = capfd.readouterr().err  # no import notices (torchao's "Failed to load", torch's pytree)
    assert "Failed to load" not in child_stderr and "Enum subclass" not in child_stderr, child_stderr
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):  # a transcriber's first files: keyed as such there too
        fast = optimize(model, "int8", cache=tmp_path / "first")
        fast.set_calibration(clips(2), first_inputs=True)
        fast(audio)
    assert "measured in a child process" in caplog.text and fast.first_inputs

    def child(code: int):
        return lambda *args, **kwargs: subprocess.CompletedProcess(args, code)

    for code, expected in ((1, "made no choice (exit code 1)"), (-9, "killed the child process that did it (SIGKILL)")):
        monkeypatch.setattr(OPT.subprocess, "run", child(code))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=LOGS):
            fast = optimize(model, "int8", cache=tmp_path / str(code))
            fast(audio)
        assert expected in caplog.text
        assert fast.chosen == ("fp32" if code < 0 else fast.choice.ranking[0])  # type: ignore[union-attr]
        assert bool(list((tmp_path / str(code)).glob("*.json"))) == (code > 0)  # measured here, or nothing kept

    def child_keeping_nothing(command, **kwargs):  # a blind guard, a disk nearly full: it hands its choice over
        fingerprint = machine.machine_fingerprint(torch.device("cpu"))
        made = Choice(["int8", "fp32"], [PathResult("int8", 0.5), PathResult("fp32", 1.0)], fingerprint, blind=True)
        OPT.write_json(torch.load(command[-1], weights_only=False)["result"], asdict(made))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(OPT.subprocess, "run", child_keeping_nothing)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast = optimize(model, "int8", cache=tmp_path / "unkept")
        fast(audio)
    assert "measured in a child process, not kept" in caplog.text and ", measured;" not in caplog.text
    assert "no path could be checked" in caplog.text  # the child's warning, said here (the caller's log)
    assert fast.chosen == "int8" and not list((tmp_path / "unkept").glob("*.json"))

    def no_python(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")  # sys.executable of an embedded interpreter

    monkeypatch.setattr(OPT.subprocess, "run", no_python)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast = optimize(model, "int8", cache=tmp_path / "embedded")
        fast(audio)
    assert "cannot start a child" in caplog.text and ", measured;" in caplog.text  # here instead


def test_the_cache_command_lists_and_removes_measurements(tmp_path, fast_paths, monkeypatch, capsys) -> None:
    """``hf-w2v2 cache``: every measurement with its model, chosen paths, size and last use (reading a cached
    choice counts as a use); ``--older-than DAYS`` removes the unused ones, ``--clear`` everything. Before, the
    folder only grew (about 1 GB of graphs for each BASE checkpoint measured)."""
    from hf_w2v2.cli import main

    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path))
    folder, audio = tmp_path / "optimize", torch.as_tensor(clips(1)[0])[None]
    model, other = make_model(), make_model()
    with torch.no_grad():
        other.lm_head.bias += 1.0  # other weights: a measurement of its own
    optimize(model)(audio)
    optimize(other)(audio)
    (folder / "f00dfeed").mkdir()  # the graphs of a measurement that kept no choice
    (folder / "f00dfeed" / "fp32-unmasked.onnx").write_bytes(b"x" * 1000)
    ten_days_ago = time.time() - 10 * 86_400
    for choice in folder.glob("*.json"):
        os.utime(choice, (ten_days_ago, ten_days_ago))
    optimize(model)(audio)  # read from the cache: used now
    assert main(["cache"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("3 measurements") and str(folder) in lines[-1]
    assert sum("Wav2Vec2ForCTC" in line for line in lines) == 2 and any("none (not finished)" in line for line in lines)
    assert main(["cache", "--older-than", "5"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 measurements")  # the other model's, unused for 10 days
    assert len(list(folder.glob("*.json"))) == 1 and (folder / "f00dfeed").is_dir()
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 2 measurements") and list(folder.iterdir()) == []
    assert main(["cache", "--older-than", "-1"]) == 2


def test_a_cache_folder_that_cannot_be_used_costs_the_measurement_not_the_run(
    tmp_path, fast_paths, monkeypatch, caplog
) -> None:
    """A cache under a file (or on a read-only disk): the paths are built in a temporary folder, with a
    warning; a read-only cache that holds the model's choice is read as it is."""
    model = make_model()
    audio = torch.as_tensor(clips(1)[0])[None]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger=LOGS):
        fast = optimize(model, cache=blocker / "cache")
        out = fast(audio).logits
    assert out.shape == model(audio).logits.shape and fast.chosen in FAST_PATHS
    assert "cannot be used (NotADirectoryError" in caplog.text and "HF_W2V2_CACHE" in caplog.text
    assert fast._scratch is not None and list(Path(fast._scratch.name).glob("*.json"))  # kept for this process
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGS):
        OPT.write_json(str(blocker / "timings" / "x.json"), {})  # a failed write is a warning, not an error
    assert "could not keep the measurement" in caplog.text
    good = tmp_path / "cache"
    optimize(model, cache=good)(audio)
    monkeypatch.setattr(OPT.os, "access", lambda path, mode: False)  # as on a read-only disk
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):
        again = optimize(model, cache=good)
        again(audio)
    assert "cached ranking" in caplog.text and "cannot" not in caplog.text and again._scratch is None


def test_a_model_of_the_same_architecture_takes_the_timings_and_guards_its_own_weights(
    tmp_path, fast_paths, monkeypatch, caplog
) -> None:
    """Timings carry over between models that differ only in weights (on this machine): the second model
    builds and guards paths fastest first only until one passes, for each ranking; another architecture
    is measured."""
    audio = torch.as_tensor(clips(1)[0])[None]
    first = optimize(make_model(), cache=tmp_path)
    first(audio)
    (timings_file,) = (tmp_path / "timings").glob("*.json")
    data = json.loads(timings_file.read_text())
    assert set(data["candidates"]) == set(FAST_PATHS) and set(data["seconds"]) == set(FAST_PATHS)  # int8 too
    # Make the order known: int8 fastest for new lengths, fp32-matmul for recurring ones.
    data["seconds"] = {n: [0.5, 0.5] for n in FAST_PATHS} | {"int8": [0.1, 0.9], "fp32-matmul": [0.3, 0.2]}
    timings_file.write_text(json.dumps(data))
    built: list[str] = []
    real_build = OPT.build_path
    monkeypatch.setattr(OPT, "build_path", lambda name, *a, **k: built.append(name) or real_build(name, *a, **k))

    other = make_model()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))  # other weights, the same architecture
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast = optimize(other, cache=tmp_path, max_cer_change=float("inf"))
        fast(audio)
    assert any("same architecture" in r.message for r in caplog.records)
    assert fast.choice is not None and (fast.chosen, fast.chosen_recurring) == ("int8", "fp32-matmul")
    assert fast.choice.ranking == ["int8", "fp32"] and sorted(built) == ["fp32", "fp32-matmul", "int8"]
    skipped = {r.name: r.error for r in fast.choice.results}
    assert skipped["fp32-conv1d"] is not None and skipped["fp32-conv1d"].startswith("not built")

    built.clear()
    strict = optimize(other, cache=tmp_path, max_cer_change=-1.0)  # its own guard: nothing but fp32 passes
    strict(audio)
    assert strict.chosen == strict.chosen_recurring == "fp32"
    assert built[0] == "fp32" and set(built) == {"fp32", "int8", "fp32-matmul"}  # those faster than fp32, in order
    assert all("accuracy guard" in (r.error or "") for r in strict.choice.results if r.name in ("int8", "fp32-matmul"))
    assert set(strict.runners) == {"fp32"}  # the rejected ones let go

    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):
        optimize(make_model("group"), cache=tmp_path)(audio)  # another architecture: measured
    assert any(", measured;" in r.message for r in caplog.records)
    assert len(list((tmp_path / "timings").glob("*.json"))) == 2


def test_a_cache_file_with_another_fingerprint_is_not_trusted(tmp_path, fast_paths, caplog) -> None:
    model = make_model()
    audio = torch.as_tensor(clips(1)[0])[None]
    optimize(model, cache=tmp_path)(audio)
    (file,) = tmp_path.glob("*.json")
    data = json.loads(file.read_text())
    data["fingerprint"]["cpu"]["model"] = "some other CPU"
    data["ranking"] = ["int8", "fp32"]
    file.write_text(json.dumps(data))
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast = optimize(model, cache=tmp_path)
        fast(audio)
    assert any("another machine" in r.message for r in caplog.records)
    assert fast.choice is not None and fast.choice.fingerprint == machine.machine_fingerprint(torch.device("cpu"))


def rank_paths(monkeypatch, timing) -> None:
    """Timings stubbed: ``timing(runners) -> seconds per name`` at new lengths and at recurring ones alike."""
    monkeypatch.setattr(MEAS, "time_paths", timing)
    monkeypatch.setattr(MEAS, "time_recurring", timing)


def fake_paths(monkeypatch, behaviours: dict) -> None:
    """Paths ``broken`` (wrong logits), ``fails`` (raises when built) and ``later`` (fastest; raises from
    the second call on) next to fp32."""
    real_build = OPT.build_path
    monkeypatch.setattr(OPT, "CPU_PATHS", ("fp32", *behaviours))

    def build(name, model, calibration, folder):
        run = real_build("fp32", model, calibration, folder)
        if name == "fp32":
            return run
        return behaviours[name](run)

    monkeypatch.setattr(OPT, "build_path", build)


def test_the_guard_rejects_a_broken_path_and_failures_fall_back(tmp_path, monkeypatch, caplog) -> None:
    calls = {"later": 0}

    def broken(run):
        return lambda audio, mask: run(audio, mask).flip(-1)  # every frame's argmax moved

    def fails(run):
        raise RuntimeError("no such kernel here")

    def later(run):
        def go(audio, mask):
            calls["later"] += 1
            if calls["later"] > 8:  # guard + timing pass, then breaks
                raise RuntimeError("session lost")
            return run(audio, mask)

        return go

    fake_paths(monkeypatch, {"broken": broken, "fails": fails, "later": later})
    rank_paths(monkeypatch, lambda runners, *_: {n: 1.0 + (n != "later") for n in runners})
    model = make_model()
    with torch.no_grad():
        for p in model.lm_head.parameters():  # confident, varied tokens: the flip changes them
            p.mul_(20)
    fast = optimize(model, calibration=clips(), cache=tmp_path)
    audio = torch.as_tensor(clips(1)[0])[None]
    with caplog.at_level(logging.INFO, logger=LOGS):
        fast(audio)
        assert fast.chosen == "later"
        results = {r.name: r for r in fast.choice.results}  # type: ignore[union-attr]
        assert "accuracy guard" in (results["broken"].error or "")
        assert "no such kernel" in (results["fails"].error or "")
        assert "broken" not in fast.choice.ranking  # type: ignore[union-attr]
        while calls["later"] <= 8:
            out = fast(audio).logits
    with torch.no_grad():
        torch.testing.assert_close(out, model(audio).logits)
    assert fast.chosen == "fp32"
    levels = {r.message.split()[2]: r.levelno for r in caplog.records if r.message.startswith("inference path ")}
    # under auto a rejection is the guard doing its job (INFO); a path that cannot run, or fails, is a warning
    assert levels["broken"] == logging.INFO and levels["fails"] == levels["later"] == logging.WARNING
    assert not any("not used" in r.message for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGS):
        named = optimize(model, "broken", calibration=clips(), cache=tmp_path)
        torch.testing.assert_close(named(audio).logits, out)  # asked for by name, refused: fp32
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].startswith("precision broken not used (accuracy guard: greedy CER change")
    assert warned[0].endswith("): running fp32")


def test_unknown_precision_other_heads_and_unusable_calibration_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        optimize(make_model(), precision="int4")
    from hf_w2v2.models.classification import Wav2Vec2ForSequenceClassification

    with pytest.raises(ValueError, match="for CTC models .* not Wav2Vec2ForSequenceClassification"):
        optimize(Wav2Vec2ForSequenceClassification(tiny(num_labels=3)).eval())  # its logits have no frames
    with pytest.raises(ValueError, match=r"holds bfloat16 weights: pass model.float\(\)"):
        optimize(make_model().to(torch.bfloat16))  # its "fp32" would be bf16, every ratio measured against it
    short = [*clips(2), np.zeros(300, np.float32)]
    with pytest.raises(ValueError, match=r"calibration clip 2: audio is too short: 300 samples; .* at least 400 "):
        optimize(make_model(), calibration=short)  # not at the first call, whose audio would be blamed
    with pytest.raises(ValueError, match=r"calibration clip 0: audio must be a non-empty \(T,\) array"):
        optimize(make_model(), calibration=[np.zeros((2, 4000), np.float32)])
    with pytest.raises(ValueError, match="2 references for 3 calibration clips"):
        optimize(make_model(), calibration=clips(), references=[[1, 2], [3]])
    fast = optimize(make_model())
    with pytest.raises(ValueError, match="calibration clip 0"):
        fast.set_calibration(short[2:])
    assert fast.calibration is None


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime")
@pytest.mark.slow
def test_onnx_static_int8_path_runs_and_is_guarded(tmp_path) -> None:
    model = make_model()
    fast = optimize(model, precision="onnx-int8-static", calibration=clips(), cache=tmp_path)
    audio = torch.as_tensor(clips(1, seed=2)[0])[None]
    logits = fast(audio).logits
    results = {r.name: r for r in fast.choice.results}  # type: ignore[union-attr]
    assert results["onnx-int8-static"].cer_change is not None or results["onnx-int8-static"].error
    assert logits.shape == model(audio).logits.shape


@pytest.mark.slow
def test_transcribe_cli_precision_auto(tmp_path, fast_paths, monkeypatch, capsys) -> None:
    from fixtures.decoding.tiny import FIXTURES, save_model_folder

    from hf_w2v2.cli import main

    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    save_model_folder(tmp_path / "model", local=True)
    files = [str(FIXTURES / "utt1.flac"), str(FIXTURES / "utt2.flac")]
    args = ["transcribe", *files, "--model", str(tmp_path / "model"), "--device", "cpu", "--quiet", "--no-lm"]
    assert main(args) == 0
    fp32 = [line for line in capsys.readouterr().out.splitlines() if "\t" in line]  # path<TAB>text lines
    assert main([*args, "--precision", "auto", "--batch-size", "2"]) == 0
    auto = [line for line in capsys.readouterr().out.splitlines() if "\t" in line]
    assert auto == fp32 and len(auto) == 2  # the guard keeps greedy output within 0.005 CER; here identical
    assert len(list((tmp_path / "cache" / "optimize").glob("*.json"))) == 1
    measured = []  # other files: the choice calibrated on a run's first files is read, not measured again
    for name in ("measure", "choose_by_timings"):  # (the second: on the timings of a model of its architecture)
        monkeypatch.setattr(OPT, name, lambda *args: measured.append(args))
    assert main([*args[:1], files[1], *args[3:], "--precision", "auto"]) == 0
    assert not measured and len(list((tmp_path / "cache" / "optimize").glob("*.json"))) == 1


def test_the_guard_against_references_bounds_the_cer_change(tmp_path, monkeypatch) -> None:
    def noisy(run):
        return lambda audio, mask: run(audio, mask).flip(-1)

    fake_paths(monkeypatch, {"noisy": noisy})
    rank_paths(monkeypatch, lambda runners, *_: {n: 1.0 + (n == "fp32") for n in runners})
    model = make_model()
    with torch.no_grad():
        for p in model.lm_head.parameters():
            p.mul_(20)
    refs = [[3, 4, 5]] * 3
    with pytest.raises(ValueError, match="2 references for 3"):
        optimize(model, calibration=clips(), references=refs[:2], cache=tmp_path)(torch.randn(1, 4000))
    fast = optimize(model, calibration=clips(), references=refs, cache=tmp_path, max_cer_change=10.0)
    fast(torch.randn(1, 4000))
    assert fast.chosen == "noisy"  # within the (loose) bound against the references
    fast = optimize(model, calibration=clips(), references=refs, cache=tmp_path, max_cer_change=0.0)
    fast(torch.randn(1, 4000))
    results = {r.name: r for r in fast.choice.results}  # type: ignore[union-attr]
    assert fast.chosen == "fp32" and "(references)" in (results["noisy"].error or "")


def similar(a: torch.Tensor, b: torch.Tensor, at_least: float = 0.9) -> bool:
    cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
    return bool(cosine >= at_least)


def check_openvino_int8(folder: str, kernel: str) -> None:
    """The OpenVINO int8 runner against eager, then read back from ``folder`` (run in a child process)."""
    import contextlib
    import io

    from hf_w2v2.inference import openvino_int8
    from hf_w2v2.quiet import quiet_loading

    model = make_model()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        runner = openvino_int8.OpenVinoInt8(model, clips(), folder, kernel)
    # NNCF's progress bars: on stderr, never on stdout (where transcripts go)
    assert "Statistics collection" not in out.getvalue() and "Statistics collection" in err.getvalue()
    audio = torch.as_tensor(np.concatenate(clips(2, seed=3)))[None]
    with torch.no_grad():
        reference = model(audio).logits
    logits = runner(audio, None)
    assert logits.shape == reference.shape
    assert similar(logits, reference)  # int8 of a random tiny model: close in direction, not exact
    # a padded batch runs the masked graph: the short item's frames are those of it alone
    batch, mask = torch.randn(2, 9000), torch.ones(2, 9000, dtype=torch.long)
    mask[1, 6000:] = 0
    with quiet_loading(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        padded = runner(batch, mask)  # builds the masked graph: under --quiet, no bars at all
    assert out.getvalue().count("Statistics collection") == 0
    assert err.getvalue().count("Statistics collection") == 2  # the first graph's two passes only
    alone = runner(batch[1:, :6000], None)
    frames = alone.shape[1]
    assert similar(padded[1, :frames], alone[0])
    # a server's workers call one runner at once: each thread has its own request (one shared request
    # failed with "Infer Request is busy" whenever OpenVINO ran on 2 threads or more, which dropped the path)
    torch.set_num_threads(2)
    shared = openvino_int8.OpenVinoInt8(model, clips(), folder, kernel)  # read back, compiled for 2 threads
    expected = shared(audio, None)
    outputs = at_once(lambda: [shared(audio, None) for _ in range(20)])
    assert all(torch.equal(out, expected) for calls in outputs for out in calls)
    torch.set_num_threads(1)

    def converted_again(*args: object) -> None:
        raise AssertionError("converted again")

    openvino_int8.quantized_graph = converted_again  # type: ignore[assignment]  # both graphs are read back
    again = openvino_int8.OpenVinoInt8(model, clips(), folder, kernel)
    assert torch.equal(again(audio, None), logits)
    again(batch, mask)
    print("openvino int8 checked")


@pytest.mark.skipif(not HAS_OPENVINO, reason="needs openvino and nncf (pip install 'hf_w2v2[openvino]')")
@pytest.mark.slow
@pytest.mark.parametrize("kernel", ["channels-major", "matmul"])
def test_openvino_int8_is_converted_from_torch_and_handles_padding(tmp_path: Path, kernel: str) -> None:
    """In a child process: a pytest worker that had run OpenVINO's int8 graphs crashed (SIGSEGV, si_code
    SI_KERNEL, in poll) in a later test that waits on SIGKILLed subprocesses, 2 of 2 suite runs; never
    without these two tests in the worker (2 runs). Not seen outside the suite's workers."""
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import torch; torch.set_num_threads(1); "
        f"from test_inference_optimize import check_openvino_int8; "
        f"check_openvino_int8({str(tmp_path)!r}, {kernel!r})"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "openvino int8 checked" in done.stdout, (done.stdout + done.stderr)[-4000:]


@pytest.mark.skipif(not HAS_TORCHAO, reason="needs torchao (pip install 'hf_w2v2[torchao]')")
@pytest.mark.slow
def test_pt2e_int8_builds_matches_fp32_and_is_guarded(tmp_path, monkeypatch) -> None:
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)  # no compile worker pool in a test worker
    rank_paths(monkeypatch, lambda runners, *_: {n: 1.0 + (n == "fp32") for n in runners})
    model = make_model()
    bound = float("inf")  # random weights: any token change would do
    fast = optimize(model, precision="pt2e-int8-static", calibration=clips(), cache=tmp_path, max_cer_change=bound)
    audio = torch.as_tensor(np.concatenate(clips(2, seed=3)))[None]  # a length it was not built on
    logits = fast(audio).logits
    assert fast.chosen == "pt2e-int8-static"
    with torch.no_grad():
        reference = model(audio).logits
    assert logits.shape == reference.shape and similar(logits, reference)  # int8 of a random tiny model
    runner = fast.runners["pt2e-int8-static"]
    # a padded batch runs item by item: the short item's frames are those of it alone
    batch, mask = torch.randn(2, 9000), torch.ones(2, 9000, dtype=torch.long)
    mask[1, 6000:] = 0
    padded, alone = runner(batch, mask), runner(batch[1:, :6000], None)
    assert padded.shape == model(batch).logits.shape
    torch.testing.assert_close(padded[1, : alone.shape[1]], alone[0])
    # the package is read back from the cache folder, not compiled again
    from hf_w2v2.inference import pt2e_int8

    monkeypatch.setattr(pt2e_int8, "compile_package", lambda *args: pytest.fail("compiled again"))
    again = pt2e_int8.Pt2eInt8(model, clips(), fast._artifacts())
    torch.testing.assert_close(again(audio, None), logits)
    # the guard with a strict bound: int8 moves some of a random model's near-uniform argmaxes, so it is rejected
    strict = MEAS.AccuracyGuard(clips(), max_cer_change=0.0)
    choice = MEAS.measure(model, ["fp32", "pt2e-int8-static"], strict, audio, fast._runner, dict(fast.runners))
    result = {r.name: r for r in choice.results}["pt2e-int8-static"]
    assert (result.cer_change or 0.0) > 0.0 and "accuracy guard" in (result.error or "")
    assert choice.ranking == ["fp32"]


def test_pt2e_int8_without_torchao_is_skipped_with_its_reason(tmp_path, monkeypatch, caplog) -> None:
    from hf_w2v2.inference import pt2e_int8

    def missing() -> None:
        raise ImportError("the PT2E int8 path needs torchao: pip install 'hf_w2v2[torchao]'")

    monkeypatch.setattr(pt2e_int8, "import_torchao", missing)
    model = make_model()
    fast = optimize(model, precision="pt2e-int8-static", calibration=clips(), cache=tmp_path)
    audio = torch.as_tensor(clips(1, seed=1)[0])[None]
    with caplog.at_level(logging.WARNING, logger=LOGS):
        logits = fast(audio).logits
    results = {r.name: r for r in fast.choice.results}  # type: ignore[union-attr]
    assert fast.chosen == "fp32" and "hf_w2v2[torchao]" in (results["pt2e-int8-static"].error or "")
    assert any("pt2e-int8-static skipped" in r.message for r in caplog.records)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(audio).logits)


def test_recurring_input_lengths_run_on_the_recurring_ranking(tmp_path, monkeypatch, caplog) -> None:
    """A path that builds kernels per input shape (OpenVINO) may be slower on a new length and faster on one
    it has met: each input runs on the ranking for its case, and a failure drops a path from both."""
    calls = {"cold": 0, "warm": 0}

    def counted(name):
        def wrap(run):
            def go(audio, mask):
                calls[name] += 1
                if name == "warm" and audio.shape[1] == 4321:
                    raise RuntimeError("lost its compiled graph")
                return run(audio, mask)

            return go

        return wrap

    fake_paths(monkeypatch, {"cold": counted("cold"), "warm": counted("warm")})
    monkeypatch.setattr(MEAS, "time_paths", lambda runners, *_: {"cold": 1.0, "warm": 2.0, "fp32": 3.0})
    monkeypatch.setattr(MEAS, "time_recurring", lambda runners, *_: {"warm": 1.0, "cold": 2.0, "fp32": 3.0})
    model = make_model()
    fast = optimize(model, cache=tmp_path)
    audio = torch.randn(1, 4000)
    fast(audio)
    assert (fast.chosen, fast.chosen_recurring) == ("cold", "warm")
    assert fast.choice is not None and fast.choice.ranking == ["cold", "warm", "fp32"]
    assert fast.choice.recurring == ["warm", "cold", "fp32"]
    assert fast.calls == {"cold": 1}
    fast(audio)
    fast(torch.randn(1, 4000))  # the same shape, other samples: recurring too
    assert fast.calls == {"cold": 1, "warm": 2}
    fast(torch.randn(1, 4000), torch.ones(1, 4000, dtype=torch.long))  # with a mask: another shape
    fast(torch.randn(2, 4000))  # another batch size: another shape
    assert fast.calls == {"cold": 3, "warm": 2}
    with torch.no_grad():
        torch.testing.assert_close(fast(audio).logits, model(audio).logits)
    results = {r.name: r for r in fast.choice.results}
    assert results["warm"].seconds == 2.0 and results["warm"].seconds_recurring == 1.0
    assert "recurring 1000 ms (3.00x)" in MEAS.describe(fast.choice)
    # The cached choice keeps both rankings.
    again = optimize(model, cache=tmp_path)
    again(audio)
    assert again.choice is not None and again.choice.recurring == ["warm", "cold", "fp32"]
    # A recurring length whose path fails: logged, dropped from both rankings, the next one runs.
    odd = torch.randn(1, 4321)
    fast(odd)
    with caplog.at_level(logging.WARNING, logger=LOGS):
        out = fast(odd).logits
    assert "warm failed" in caplog.text
    assert fast.choice.recurring == ["cold", "fp32"] and "warm" not in fast.choice.ranking
    assert fast.chosen_recurring == "cold" and out.shape == model(odd).logits.shape


def test_recurring_timing_times_every_path_on_a_length_it_has_met() -> None:
    lengths: dict[str, list[int]] = {"slow": [], "quick": []}

    def spy(name: str, seconds: float):
        def run(audio: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
            lengths[name].append(audio.shape[1])
            time.sleep(seconds)
            return audio

        return run

    best = MEAS.time_recurring({"slow": spy("slow", 0.03), "quick": spy("quick", 0.001)}, torch.zeros(1, 800), 2)
    assert lengths == {"slow": [800] * 3, "quick": [800] * 3}  # a first call, then two timed: none dropped
    assert best["slow"] > best["quick"] > 0


def slow_measurement(monkeypatch) -> list[int]:
    """optimize's measurement made 0.5 s slower, so that a second caller arrives while it runs; the list of the
    threads that measured."""
    calls: list[int] = []
    real_measure = OPT.measure

    def slow_measure(*args, **kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.5)
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(OPT, "measure", slow_measure)
    return calls


def test_two_first_calls_at_once_measure_once(tmp_path, fast_paths, monkeypatch) -> None:
    """A server's workers may both make the first call: one measures, the other waits for its choice."""
    calls = slow_measurement(monkeypatch)
    fast = optimize(make_model(), cache=tmp_path)
    audio = torch.as_tensor(clips(1)[0])[None]
    outputs = at_once(lambda: fast(audio).logits)
    assert len(calls) == 1 and len(outputs) == 2 and fast.choice is not None


def test_two_processes_measuring_one_model_at_once_measure_it_once(tmp_path, fast_paths, monkeypatch, caplog) -> None:
    """Processes started together on one cache (parallel CLI runs over folders, replicas on one volume): the
    second waits for the first's choice, instead of measuring the same paths on the same cores at once (each
    slowing the other's timings). Two FastModels stand for them: each opens the lock file itself, as two
    processes do (a flock held through one open file is waited for through another)."""
    calls = slow_measurement(monkeypatch)
    model, audio = make_model(), torch.as_tensor(clips(1)[0])[None]
    both = [optimize(model, cache=tmp_path), optimize(model, cache=tmp_path)]
    taken = threading.Lock()

    def first_call() -> torch.Tensor:
        with taken:
            fast = both.pop()
        return fast(audio).logits

    with caplog.at_level(logging.INFO, logger=LOGS):
        first, second = at_once(first_call)
    assert len(calls) == 1 and "waiting for its choice" in caplog.text and "measured by another process" in caplog.text
    torch.testing.assert_close(first, second)
