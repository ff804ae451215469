"""Deployment paths: int8 quantisation, input checks (eager and traced), torch.compile,
torch.export / ONNX, precision choice and batched transcription."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.concurrency import at_once
from fixtures.decoding.tiny import FIXTURES, make_model, save_model_folder

import hf_w2v2
from hf_w2v2.cli import main
from hf_w2v2.inference import export as E
from hf_w2v2.inference.batching import length_sorted_batches
from hf_w2v2.inference.precision import Int8Conv1d, quantize_int8, resolve_precision
from hf_w2v2.inference.transcribe import Transcriber
from hf_w2v2.models import feature_encoder as FE
from hf_w2v2.models.configuration import tiny

SHIPPED = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
HEADS = {
    "Wav2Vec2Model": lambda out: out.last_hidden_state,
    "Wav2Vec2ForCTC": lambda out: out.logits,
    "Wav2Vec2ForSequenceClassification": lambda out: out.logits,
    "Wav2Vec2ForAudioFrameClassification": lambda out: out.logits,
    "Wav2Vec2ForXVector": lambda out: out.embeddings,
    "Wav2Vec2ForPreTraining": lambda out: out.projected_states,
}


def layer_config(**overrides):
    return tiny(vocab_size=12, feat_extract_norm="layer", do_stable_layer_norm=True, **overrides)


@pytest.mark.parametrize("name", sorted(HEADS))
@pytest.mark.parametrize("batching", FE.BATCHINGS)
def test_int8_quantisation_of_every_model_class(name, batching, monkeypatch):
    # Each way the feature encoder can run a batch (the process measures which is faster): dynamic int8
    # scales the activations per call, so item by item and all at once round differently (CTC: 11% of the
    # largest logit item by item, 9% at once; a 10% bound failed whenever the process had measured "items").
    monkeypatch.setenv(FE.BATCHING_ENV, batching)
    torch.manual_seed(0)
    model = getattr(hf_w2v2, name)(tiny(vocab_size=12)).eval()
    quantized = quantize_int8(model)
    assert any(isinstance(m, Int8Conv1d) for m in quantized.modules())
    floats = {n.split(".")[-1] for n, m in quantized.named_modules() if type(m) is torch.nn.Linear}
    assert floats <= {"project_q", "kernel"}
    assert any(type(m) is torch.nn.Linear for m in model.modules())  # the original is untouched
    audio = torch.randn(2, 6000)
    with torch.inference_mode():
        ref, got = HEADS[name](model(audio)), HEADS[name](quantized(audio))
    assert got.shape == ref.shape and torch.isfinite(got).all()
    assert (got - ref).abs().max() <= 0.15 * ref.abs().max() + 1e-3


def test_stock_quantize_dynamic_works_on_our_attention():
    model = make_model()
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    with torch.inference_mode():
        assert quantized(torch.randn(1, 4000)).logits.shape == model(torch.randn(1, 4000)).logits.shape


def test_int8_conv_matches_the_convolution():
    conv = torch.nn.Conv1d(16, 24, kernel_size=3, stride=2)
    x = torch.randn(2, 16, 50)
    with torch.no_grad():
        ref, got = conv(x), Int8Conv1d(conv)(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_input_of_another_float_dtype_is_cast_to_the_model_dtype(dtype):
    model = make_model()
    audio = torch.randn(1, 4000)
    with torch.no_grad():
        ref = model(audio).logits
        got = model(audio.to(dtype)).logits
        same = model(audio.to(dtype).float()).logits
    assert got.dtype == torch.float32
    assert torch.equal(got, same)
    assert (got - ref).abs().max() < 0.5


def test_bad_attention_mask_values_and_label_batch():
    model = make_model()
    audio = torch.randn(2, 4000)
    mask = torch.ones(2, 4000, dtype=torch.long)
    mask[1, :10] = 2
    with pytest.raises(ValueError, match="only 0 .* and 1 .* found 2"):
        model(audio, attention_mask=mask)
    with pytest.raises(ValueError, match="labels have batch size 3 but the input has 2"):
        model(audio, labels=torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        model(audio, attention_mask=torch.ones(2, 3999))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 4000), float("nan")))
    assert model(audio, attention_mask=mask.clamp(max=1).bool()).logits.shape[0] == 2


def test_compile_fullgraph_dynamic_lengths():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(layer_config()).eval()
    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="eager")
    with torch.no_grad():
        for n in (3000, 7001):
            audio, mask = torch.randn(2, n), torch.ones(2, n, dtype=torch.long)
            mask[1, n // 2 :] = 0
            # Graphs run the conv op where eager CPU code runs its matmul kernel: equal up to float rounding.
            expected = model(audio, attention_mask=mask).logits
            torch.testing.assert_close(compiled(audio, attention_mask=mask).logits, expected, rtol=1e-5, atol=1e-5)


def test_traced_shape_check_is_kept_in_an_exported_program():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(layer_config()).eval()
    program = E.export_program(model)
    module = program.module()
    audio, mask = E.example_inputs(3, 9000)
    with torch.no_grad():
        # conv op in the graph, matmul kernel in eager CPU code: equal up to float rounding (the spec: 1e-4)
        torch.testing.assert_close(module(audio, mask), model(audio, attention_mask=mask).logits, rtol=1e-5, atol=1e-5)
        with pytest.raises(Exception):  # noqa: B017  (a guard or _check error, depending on torch)
            module(audio, mask[:, :-1])
    with pytest.raises(ValueError, match="at least 720"):
        E.check_inputs(model.config, audio[:, :500], mask[:, :500])


def test_export_warns_in_training_mode_and_leaves_a_bf16_model_as_it_is(caplog):
    model = make_model().train()
    with caplog.at_level(logging.WARNING):
        wrapped = E.for_export(model)
    assert not wrapped.model.training and "eval mode" in caplog.text
    assert wrapped.model is model  # a float32 model is exported as it is, not copied
    half = make_model().to(torch.bfloat16)  # the graph is float32; the caller's model stays bf16 (was converted)
    wrapped = E.for_export(half)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in wrapped.parameters()} == {torch.float32}


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxscript/onnxruntime not installed")
def test_onnx_export_of_ctc_and_classification_heads(tmp_path, caplog):
    torch.manual_seed(0)
    clips = [np.random.default_rng(i).standard_normal(n).astype(np.float32) for i, n in enumerate((800, 9001))]
    for name in ("Wav2Vec2ForCTC", "Wav2Vec2ForSequenceClassification"):
        model = getattr(hf_w2v2, name)(layer_config(num_labels=3)).eval()
        with caplog.at_level(logging.INFO):  # an application logging at INFO (a server)
            path = E.export_onnx(model, tmp_path / f"{name}.onnx")
        assert E.max_logit_difference(model, E.OnnxRunner(path), clips) < 1e-4
    # the exporter's graph optimiser logged every rewrite at INFO (about 80 lines per export)
    assert not [r.name for r in caplog.records if r.name.split(".")[0] in ("onnx_ir", "onnxscript", "torch")]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxscript/onnxruntime not installed")
def test_cache_files_are_written_under_names_of_their_own_process_and_thread(tmp_path, monkeypatch):
    """Two servers started together may build the same cache files: each writes a partial file of its own
    and renames it whole (one shared partial name let a build rename, or read, the other's half-written file)."""
    import subprocess
    import sys

    from hf_w2v2.files import partial_name
    from hf_w2v2.inference import paths

    name = str(tmp_path / "fp32.onnx")
    other_thread = at_once(lambda: partial_name(name), threads=1)
    code = f"from hf_w2v2.files import partial_name; print(partial_name({name!r}))"
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = {partial_name(name), other_thread[0], other_process.stdout.strip(), name}
    assert len(names) == 4 and all(n.endswith(".onnx") for n in names)  # the extension kept: writers check it
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source, destination):
        renames.append((os.fspath(source), os.fspath(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(paths.os, "replace", spy)
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(layer_config()).eval()
    built = paths.onnx_file("onnx-int8", model, [], str(tmp_path), masked=False)
    assert [destination for _, destination in renames] == [str(tmp_path / "fp32-unmasked.onnx"), built]
    assert all(source == partial_name(destination) for source, destination in renames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32-unmasked.onnx", "onnx-int8-unmasked.onnx"]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxscript/onnxruntime not installed")
def test_the_unmasked_onnx_graph_and_the_runner_that_picks_a_graph_per_call(tmp_path, monkeypatch):
    """Unpadded calls run the graph without a mask input (none of its masking ops); a padded call builds
    the masked graph then, and its valid frames are the eager model's."""
    import onnx

    from hf_w2v2.inference.paths import build_path

    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(layer_config()).eval()
    path = E.export_onnx(model, tmp_path / "unmasked.onnx", attention_mask=False)
    graph = onnx.load(path)
    assert [i.name for i in graph.graph.input] == ["input_values"]
    assert "Gelu" in {node.op_type for node in graph.graph.node}  # opset 20: one kernel, not Erf and four more
    # Static int8 leaves the first conv, the (grouped) positional conv and the output layer in float.
    nodes = {node.name: node for node in graph.graph.node}
    kept = [nodes[name] for name in E.float_nodes(path)]
    assert [node.op_type for node in kept] == ["Conv", "Conv", "MatMul"]
    assert kept[0] is next(n for n in graph.graph.node if n.op_type == "Conv")
    assert any(a.name == "group" and a.i > 1 for a in kept[1].attribute)
    assert kept[2] is [n for n in graph.graph.node if n.op_type == "MatMul"][-1]
    # Dynamic int8: int8 weights where the CPU has VNNI, uint8 where it has not (the default asks the CPU).
    # onnxruntime's advice, logged on a root logger with no handler, would have run logging.basicConfig.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    for signed, kind in ((True, onnx.TensorProto.INT8), (False, onnx.TensorProto.UINT8)):
        quantized = E.quantize_onnx(path, tmp_path / f"q{signed}.onnx", signed_weights=signed)
        weights = [t for t in onnx.load(quantized).graph.initializer if t.name.endswith("_quantized")]
        assert weights and all(t.data_type == kind for t in weights)
    assert logging.getLogger().handlers == []  # the process's logging left as it was
    runner = E.OnnxRunner(path)
    audio = torch.randn(2, 9000)
    with torch.no_grad():
        expected = model(audio).logits
    np.testing.assert_allclose(runner(audio.numpy()), expected.numpy(), atol=1e-4, rtol=1e-4)
    mask = torch.ones(2, 9000, dtype=torch.long)
    mask[1, 6000:] = 0
    with pytest.raises(ValueError, match="unpadded audio only"):
        runner(audio.numpy(), mask.numpy())
    folder = tmp_path / "paths"
    folder.mkdir()
    run = build_path("onnx", model, None, str(folder))
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["fp32-unmasked.onnx"]  # the masked one waits
    torch.testing.assert_close(run(audio, None), expected, atol=1e-4, rtol=1e-4)
    # two first padded calls at once (a server's workers): the masked graph is exported once, both get it
    padded_calls = at_once(lambda: run(audio, mask))
    assert torch.equal(*padded_calls)
    padded = padded_calls[0]
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["fp32-unmasked.onnx", "fp32.onnx"]
    with torch.no_grad():
        alone = model(audio[1:, :6000]).logits
    torch.testing.assert_close(padded[1:, : alone.shape[1]], alone, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxscript/onnxruntime not installed")
def test_export_cli_on_the_shipped_model(tmp_path, capsys, monkeypatch):
    clip = str(FIXTURES / "utt1.flac")
    assert main(["export", str(SHIPPED), str(tmp_path / "m.onnx"), "--check-audio", clip]) == 0
    out = capsys.readouterr().out
    assert "max |eager - exported| logit" in out and (tmp_path / "m.onnx").stat().st_size > 1e6
    assert main(["export", str(SHIPPED), str(tmp_path / "m.pt2"), "--format", "exported-program"]) == 0
    assert main(["export", str(SHIPPED), str(tmp_path / "q.onnx"), "--format", "onnx-int8", "--check-audio", clip]) == 0
    int8_diff = float(capsys.readouterr().out.rsplit("logit = ", 1)[1].split()[0])
    assert 1e-4 < int8_diff < 1.0  # quantised: close, not exact
    assert (tmp_path / "q.onnx").stat().st_size < 0.7 * (tmp_path / "m.onnx").stat().st_size  # uint8 MatMuls
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "x.onnx")]) == 2

    def cut_short(model, path, *args, **kwargs):
        Path(path).write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(E, "export_onnx", cut_short)  # Ctrl-C while the graph is written
    assert main(["export", str(SHIPPED), str(tmp_path / "cut.onnx")]) == 130
    assert not list(tmp_path.glob("cut*"))  # no half graph at the output path (was: cut.onnx, 12 bytes)


def test_precision_resolution(caplog, monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("int8", cpu) == "int8"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", cpu)
    with pytest.raises(ValueError, match="CPU only"):
        resolve_precision("int8", torch.device("cuda"))
    monkeypatch.setattr("hf_w2v2.inference.precision.cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert resolve_precision("bf16", cpu) == "fp32"
    assert "emulated" in caplog.text
    assert resolve_precision("bf16", cpu, allow_emulated=True) == "bf16"


def test_length_sorted_batches():
    assert length_sorted_batches([3, 9, 1, 7, 5], 2) == [[1, 3], [4, 0], [2]]


@pytest.fixture(scope="module")
def local_model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("local")
    save_model_folder(directory, local=True)
    return directory


def test_batched_transcription_matches_one_by_one(local_model_dir):
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (4000, 9000, 6100, 12000, 800)]
    single = Transcriber.from_pretrained(local_model_dir, device="cpu")
    batched = Transcriber.from_pretrained(local_model_dir, device="cpu", batch_size=3)
    for one, many in zip(single.logits_batch(clips), batched.logits_batch(clips)):
        assert one.shape == many.shape
        assert torch.allclose(one, many, atol=1e-4)
    assert [t.text for t in single.decode(single.logits_batch(clips))] == [
        t.text for t in batched.decode(batched.logits_batch(clips))
    ]


def test_transcribe_cli_precision_and_batch_size(local_model_dir, capsys):
    files = [str(FIXTURES / "utt1.flac"), str(FIXTURES / "utt2.flac")]
    args = ["transcribe", *files, "--model", str(local_model_dir), "--device", "cpu", "--quiet", "--no-lm"]
    assert main(args) == 0
    fp32 = capsys.readouterr().out
    assert main([*args, "--batch-size", "2"]) == 0
    assert capsys.readouterr().out == fp32
    assert main([*args, "--precision", "int8", "--batch-size", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main([*args, "--batch-size", "0"]) == 2
