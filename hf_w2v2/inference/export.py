"""Export a model's ``(audio, attention mask) -> logits`` graph: ``torch.export`` or ONNX.

Shape legend: B batch, T samples, F frames, V classes (vocabulary or labels).

The exported graph has dynamic batch and time axes. It is the eval-mode model: dropout,
LayerDrop and SpecAugment are training-only and absent from it (an export always calls
``model.eval()`` and says so when the model was in training mode). It runs the fp32 CPU
path of the model (channels-major convolutions, as eager inference under ``no_grad``).

Input checks that read values (NaN samples, 0/1 mask) cannot live inside a graph; the shape
checks do (``torch._check``), and :func:`check_inputs` runs the value checks before an exported
program or ONNX session is called. Audio needs at least :data:`MIN_SAMPLES` samples (two frames):
at one frame the tracer would specialise the graph.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hf_w2v2.files import written_whole
from hf_w2v2.inference.machine import cpu_info
from hf_w2v2.inference.precision import float32_model
from hf_w2v2.models.lengths import receptive_field
from hf_w2v2.models.validation import check_audio
from hf_w2v2.quiet import library_notices_quieted

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "onnx-int8", "exported-program")
MIN_SAMPLES = 720  # two frames of the wav2vec 2.0 encoder (receptive field 400 + hop 320)
MAX_SAMPLES = 16_000 * 3600  # one hour at 16 kHz


class LogitsOnly(nn.Module):
    """``model(input_values, attention_mask).logits`` as a plain tensor: what exporters want."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_values, attention_mask=attention_mask, return_dict=True).logits


class UnmaskedLogits(nn.Module):
    """``model(input_values).logits``: the graph for unpadded input (no mask, none of its masking ops)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values, return_dict=True).logits


def for_export(model: nn.Module, attention_mask: bool = True) -> nn.Module:
    """The eval-mode logits graph of ``model`` (CTC or a classification head), with a mask input or without."""
    if model.training:
        logger.warning("exporting in eval mode: dropout, LayerDrop and SpecAugment are left out of the graph")
    wrapper = (LogitsOnly if attention_mask else UnmaskedLogits)(float32_model(model.eval()))
    return wrapper.eval()  # the new module too: torch.onnx warns of an export in training mode


def example_inputs(batch: int = 2, samples: int = 16_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Random audio (B, T) and an int64 attention mask (B, T) with the last item shortened."""
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, samples, generator=generator)
    mask = torch.ones(batch, samples, dtype=torch.long)
    if batch > 1:
        mask[-1, samples * 3 // 4 :] = 0
    return audio, mask


def _dynamic_shapes() -> dict[str, dict[int, torch.export.Dim]]:
    batch = torch.export.Dim("batch", min=1, max=1024)
    samples = torch.export.Dim("samples", min=MIN_SAMPLES, max=MAX_SAMPLES)
    return {"input_values": {0: batch, 1: samples}, "attention_mask": {0: batch, 1: samples}}


def export_program(model: nn.Module) -> torch.export.ExportedProgram:
    """``torch.export`` of the logits graph with dynamic batch and time axes."""
    wrapped = for_export(model)
    with torch.no_grad():
        return torch.export.export(wrapped, example_inputs(), dynamic_shapes=_dynamic_shapes(), strict=False)


# Loggers quieted during an ONNX export: torch.onnx says torchvision is not installed (four warnings), and the
# graph optimiser (onnx_ir, onnxscript) logs each rewrite it makes at INFO (83 lines for the shipped model).
EXPORT_NOTICE_LOGGERS = ("torch.onnx", "onnx_ir", "onnxscript")


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = 20, attention_mask: bool = True) -> str:
    """Write an ONNX file (inputs ``input_values`` float32 (B, T), ``attention_mask`` int64 (B, T);
    output ``logits`` (B, F, V)) through the ``torch.export`` based exporter.

    ``opset`` 20 has a ``Gelu`` operator, which onnxruntime runs as one kernel; at 18 GELU is written
    out with ``Erf`` (the shipped model, 10 s: 37.6 ms at 18, 33.3 ms at 20). ``attention_mask=False``
    writes the graph for unpadded input only (``input_values`` alone): it skips the masking (33.7 ms).
    """
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as err:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'hf_w2v2[deploy]'") from err
    wrapped = for_export(model, attention_mask)
    names = ["input_values", "attention_mask"] if attention_mask else ["input_values"]
    shapes = {name: axes for name, axes in _dynamic_shapes().items() if name in names}
    path = os.fspath(path)
    with torch.no_grad(), library_notices_quieted(EXPORT_NOTICE_LOGGERS):
        program = torch.onnx.export(
            wrapped,
            example_inputs()[: len(names)],
            dynamo=True,
            dynamic_shapes=shapes,
            input_names=names,
            output_names=["logits"],
            opset_version=opset,
            optimize=True,
            verbose=False,  # no "[torch.onnx] ..." progress lines
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(path)
    return path


def quantize_onnx(source: str | os.PathLike, path: str | os.PathLike, signed_weights: bool | None = None) -> str:
    """Dynamic int8 quantisation of an fp32 ONNX graph (onnxruntime's ``quantize_dynamic``).

    The weights of the MatMuls (every projection of the Transformer) are stored as 8-bit integers and
    the activations quantised per call. ``signed_weights`` (default: whether this CPU has VNNI, as
    :func:`vnni`): int8 weights where the CPU multiplies int8 by uint8 in one instruction (the shipped
    model, 10 s, AVX-512 VNNI: 25.3 ms against 27.0 with uint8), uint8 where it has no VNNI (uint8 ran
    faster on an AVX2 CPU without it). The file then depends on the machine that wrote it, as optimum's
    per-instruction-set presets do. Logits move by ~0.1 (bench/bench_inference.py measures CER/WER)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as err:
        raise ImportError("int8 ONNX needs onnxruntime: pip install 'hf_w2v2[deploy]'") from err
    signed = vnni() if signed_weights is None else signed_weights
    weights = QuantType.QInt8 if signed else QuantType.QUInt8
    # Conv weights that the graph computes (the weight-normed positional conv) are not initializers: MatMul only.
    with library_notices_quieted():  # its advice to pre-process, logged on the root logger
        quantize_dynamic(os.fspath(source), os.fspath(path), weight_type=weights, op_types_to_quantize=["MatMul"])
    return os.fspath(path)


def vnni() -> bool:
    """Whether this CPU has VNNI (``avx512_vnni`` or ``avx_vnni``; :func:`~hf_w2v2.inference.machine.cpu_info`)."""
    return bool({"avx512_vnni", "avx_vnni"} & set(cpu_info()["flags"]))


def quantize_onnx_static(
    source: str | os.PathLike, path: str | os.PathLike, clips: Sequence[np.ndarray], preprocess: bool = True
) -> str:
    """Static int8 quantisation (QDQ, per-channel weights) of an fp32 ONNX graph, calibrated on ``clips``.

    Unlike :func:`quantize_onnx`, the activation scales are fixed from the calibration clips (min/max)
    and the convolutions of the feature encoder are quantised too (all but the first; that one, the
    positional convolution and the output layer stay in float: :func:`float_nodes`), so onnxruntime
    runs fused int8 Conv/MatMul kernels (VNNI where the CPU has it) with no per-call scale search.
    Activations are uint8, weights int8 (onnxruntime's x86 default).
    ``clips`` are normalised ``(T_i,)`` float32 arrays of at least :data:`MIN_SAMPLES` samples, one
    per calibration batch.
    """
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as err:
        raise ImportError("int8 ONNX needs onnxruntime: pip install 'hf_w2v2[deploy]'") from err
    import onnx

    inputs = {i.name for i in onnx.load(os.fspath(source), load_external_data=False).graph.input}
    feeds = [
        {"input_values": np.asarray(c, np.float32)[None], "attention_mask": np.ones((1, len(c)), np.int64)}
        for c in clips
        if len(c) >= MIN_SAMPLES
    ]
    feeds = [{name: value for name, value in feed.items() if name in inputs} for feed in feeds]
    if not feeds:
        raise ValueError(f"static int8 needs calibration clips of at least {MIN_SAMPLES} samples")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.items, None)

    source, path = os.fspath(source), os.fspath(path)
    with tempfile.TemporaryDirectory() as scratch, library_notices_quieted():
        if preprocess:  # constant folding + shape inference: more nodes become quantisable
            prepared = os.path.join(scratch, "prepared.onnx")
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
            source = prepared
        quantize_static(
            source,
            path,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Conv", "Gemm"],
            nodes_to_exclude=float_nodes(source),
        )
    return path


def float_nodes(path: str) -> list[str]:
    """The nodes static int8 leaves in float: the graph's first Conv (the feature encoder's, on raw audio),
    its grouped Convs (the positional convolution) and its last MatMul (the output layer), by name.

    Shipped model, greedy CER against the transcripts:
    - the first Conv in int8 moved CER by +0.026 (60 synth-dev clips), in float +0.003, at the same speed:
      one input channel leaves int8 nothing to gain there;
    - the positional convolution and the output layer in float as well: +0.0127 -> +0.0036 on the 10
      clips ``optimize()`` guards on, +0.0003 -> -0.0038 on 60, at the same speed (10 s: 21.0 -> 20.2 ms;
      2026-12-07, 2-core Zen 5). The output layer's logits are what the argmax reads.
    """
    import onnx

    nodes = onnx.load(path, load_external_data=False).graph.node  # topologically sorted
    convs = [node for node in nodes if node.op_type == "Conv"]
    grouped = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    last_matmul = [node for node in nodes if node.op_type == "MatMul"][-1:]
    return [node.name for node in convs[:1] + grouped + last_matmul]


def check_inputs(model_config: object, audio: torch.Tensor, mask: torch.Tensor) -> None:
    """The eager model's input checks (shape, NaN, 0/1 mask, length), for calls into an exported graph."""
    check_audio(audio, model_config, mask)  # type: ignore[arg-type]
    if audio.shape[1] < MIN_SAMPLES:
        field = receptive_field(model_config.conv_kernel, model_config.conv_stride)  # type: ignore[attr-defined]
        raise ValueError(
            f"exported graphs take at least {MIN_SAMPLES} samples (two frames), got {audio.shape[1]} "
            f"(the eager model takes {field})"
        )


class OnnxRunner:
    """An ONNX logits graph run by onnxruntime on the CPU: ``runner(audio, mask)`` -> (B, F, V) numpy."""

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError("ONNX inference needs onnxruntime: pip install 'hf_w2v2[deploy]'") from err
        options = onnxruntime.SessionOptions()
        if threads:  # one pool of ``threads`` inside each op, ops one after the other (as torch runs them)
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])

        self.masked = any(i.name == "attention_mask" for i in self.session.get_inputs())

    def __call__(self, audio: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """Logits of ``audio`` (B, T); ``mask`` (B, T) for a graph with a mask input (None: all ones). A graph
        without one (:func:`export_onnx` with ``attention_mask=False``) takes unpadded audio only."""
        feeds: dict[str, np.ndarray] = {"input_values": np.asarray(audio, dtype=np.float32)}
        if self.masked:
            # numpy's one-thread fill: a torch one would wait for its thread pool while onnxruntime's spins
            ones = np.ones(feeds["input_values"].shape, np.int64)
            feeds["attention_mask"] = ones if mask is None else np.asarray(mask, dtype=np.int64)
        elif mask is not None and not np.asarray(mask).all():
            raise ValueError("this ONNX graph takes no attention mask: unpadded audio only")
        return self.session.run(["logits"], feeds)[0]


def pad_batch(clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``(T_i,)`` clips into audio (B, T) and an int64 mask (B, T)."""
    longest = max(len(c) for c in clips)
    audio = torch.zeros(len(clips), longest)
    mask = torch.zeros(len(clips), longest, dtype=torch.long)
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = torch.as_tensor(clip, dtype=torch.float32)
        mask[i, : len(clip)] = 1
    return audio, mask


def max_logit_difference(
    model: nn.Module, run: Callable[[torch.Tensor, torch.Tensor], object], clips: Sequence[np.ndarray]
) -> float:
    """Largest |eager - exported| logit over ``clips`` run one by one and as one padded batch,
    comparing valid frames only; ``run(audio, mask)`` calls the exported graph."""
    model = model.eval()
    worst = 0.0
    batches = [[c] for c in clips] + ([list(clips)] if len(clips) > 1 else [])
    for batch in batches:
        audio, mask = pad_batch(batch)
        check_inputs(model.config, audio, mask)
        with torch.no_grad():
            expected = model(audio, attention_mask=mask).logits
            got = torch.as_tensor(np.asarray(run(audio, mask)))
        frames = model.frame_lengths(mask)  # type: ignore[operator]
        for i, n in enumerate(frames.tolist()):
            worst = max(worst, float((got[i, :n] - expected[i, :n]).abs().max()))
    return worst


HEADS = ("Wav2Vec2ForCTC", "Wav2Vec2ForSequenceClassification", "Wav2Vec2ForAudioFrameClassification")


def load_head(path: str | os.PathLike) -> nn.Module:
    """The model class named in the folder's ``config.json`` (``architectures``), from hf_w2v2."""
    from hf_w2v2 import models
    from hf_w2v2.inference.model_folder import check_weights_folder
    from hf_w2v2.models.configuration import Wav2Vec2Config

    check_weights_folder(path)  # names a missing config.json or weights file before transformers does
    config = Wav2Vec2Config.from_pretrained(path)
    names = [n for n in (config.architectures or ["Wav2Vec2ForCTC"]) if n in HEADS]
    if not names:
        raise ValueError(f"{path}: architectures {config.architectures} has none of {', '.join(HEADS)} to export")
    from hf_w2v2.models.integrity import check_finite_weights

    model = getattr(models, names[0]).from_pretrained(path)
    check_finite_weights(model, path)
    return model


def export_checked(
    model_dir: str | os.PathLike, output: str | os.PathLike, fmt: str, audio_paths: Sequence[str] = ()
) -> float:
    """Export the model folder's head as ``fmt`` (:data:`EXPORT_FORMATS`) to ``output``, read the file
    back and return the largest |eager - exported| logit on ``audio_paths`` (or random clips)."""
    from hf_w2v2.data.audio import load_audio, normalize_waveform

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    model = load_head(model_dir)
    if audio_paths:
        clips = [normalize_waveform(load_audio(p)) for p in audio_paths]
    else:
        generator = np.random.default_rng(0)
        clips = [generator.standard_normal(n).astype(np.float32) for n in (16_000, 40_000)]
    output = os.fspath(output)
    run: Callable[[torch.Tensor, torch.Tensor], object]
    with written_whole(output) as part:  # a Ctrl-C or a full disk leaves no half graph at ``output``
        if fmt == "onnx":
            export_onnx(model, part)
        elif fmt == "onnx-int8":
            with tempfile.TemporaryDirectory() as scratch:
                quantize_onnx(export_onnx(model, os.path.join(scratch, "fp32.onnx")), part)
        else:
            torch.export.save(export_program(model), part)
    if fmt in ("onnx", "onnx-int8"):
        run = OnnxRunner(output)
    else:
        module = torch.export.load(output).module()
        run = lambda audio, mask: module(audio, mask)
    return max_logit_difference(model, run, clips)
