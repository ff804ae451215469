"""The routes a user takes today, run in their own environment: optimum-onnx (ONNX Runtime) and
optimum-intel (OpenVINO) export of a stock transformers model folder.

    PYTHONPATH=<site with optimum, optimum-intel, optimum-onnx> python bench/peer_export.py MODEL_DIR OUT_DIR

optimum pins transformers 4.x while hf_w2v2 needs 5.x, so ``bench_inference.py`` runs this file in a
subprocess with a separate site folder first on ``PYTHONPATH`` (installed with ``pip install --target
SITE --no-deps optimum optimum-intel optimum-onnx transformers==4.57.6 huggingface_hub==0.36.2
tokenizers datasets==4.0.0``) and times the files it writes in its own process. Nothing of hf_w2v2 is
imported here. Writes ``OUT_DIR/ort/model.onnx`` (fp32), ``OUT_DIR/ort-int8/model_quantized.onnx``
(optimum's ``AutoQuantizationConfig`` dynamic int8 of the MatMuls for this CPU's instruction set) and
``OUT_DIR/ov/openvino_model.xml`` (fp32 IR; NNCF quantises it in the bench process).
"""

from __future__ import annotations

import os
import sys


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    return set()


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    from optimum.intel import OVModelForCTC
    from optimum.onnxruntime import ORTModelForCTC, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    ORTModelForCTC.from_pretrained(source, export=True).save_pretrained(os.path.join(out, "ort"))
    flags = cpu_flags()
    preset = AutoQuantizationConfig.avx512_vnni if "avx512_vnni" in flags else AutoQuantizationConfig.avx2
    if "avx512_vnni" not in flags and "avx512f" in flags:
        preset = AutoQuantizationConfig.avx512
    quantizer = ORTQuantizer.from_pretrained(os.path.join(out, "ort"))
    # optimum's default also quantises Conv, which fails on the weight-normed positional conv
    # ("Expected .../weight.0/Mul_output_0 to be an initializer"): MatMul only, as its error leaves a user.
    config = preset(is_static=False, operators_to_quantize=["MatMul"])
    quantizer.quantize(save_dir=os.path.join(out, "ort-int8"), quantization_config=config)
    # Not compiled here: the bench compiles the graph itself, with its settings.
    OVModelForCTC.from_pretrained(source, export=True, compile=False).save_pretrained(os.path.join(out, "ov"))
    print(f"peer routes written to {out} ({preset.__name__} dynamic int8)")


if __name__ == "__main__":
    main()
