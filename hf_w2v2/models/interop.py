"""Checkpoint interop: original fairseq wav2vec 2.0 checkpoints -> Hugging Face layout.

Hub checkpoints load directly with ``from_pretrained`` (transformers renames the
legacy ``weight_g``/``weight_v`` keys of the positional convolution to
``parametrizations.weight.original0/1``; :func:`rename_legacy_weight_norm` does
the same for a raw state dict). ``.bin`` files are read with
``torch.load(weights_only=True)``, so a pickle cannot run code.

The fairseq key mapping, for a pre-trained model (``Wav2Vec2Model`` in fairseq):

=====================================================  ==============================================
fairseq                                                hf_w2v2 / transformers (under ``wav2vec2.``)
=====================================================  ==============================================
feature_extractor.conv_layers.{i}.0.{weight,bias}      feature_extractor.conv_layers.{i}.conv.*
feature_extractor.conv_layers.0.2.*  (group mode)      feature_extractor.conv_layers.0.layer_norm.*
feature_extractor.conv_layers.{i}.2.1.* (layer mode)   feature_extractor.conv_layers.{i}.layer_norm.*
layer_norm.*                                           feature_projection.layer_norm.*
post_extract_proj.*                                    feature_projection.projection.*
mask_emb                                               masked_spec_embed
encoder.pos_conv.0.{bias,weight_g,weight_v}            encoder.pos_conv_embed.conv.{bias, ...original0, ...original1}
encoder.layer_norm.*                                   encoder.layer_norm.*
encoder.layers.{i}.self_attn.{q,k,v,out}_proj.*        encoder.layers.{i}.attention.{q,k,v,out}_proj.*
encoder.layers.{i}.self_attn_layer_norm.*              encoder.layers.{i}.layer_norm.*
encoder.layers.{i}.fc1.* / fc2.*                       encoder.layers.{i}.feed_forward.{intermediate,output}_dense.*
encoder.layers.{i}.final_layer_norm.*                  encoder.layers.{i}.final_layer_norm.*
quantizer.vars / quantizer.weight_proj.*               quantizer.codevectors / quantizer.weight_proj.*  (no prefix)
project_q.* / final_proj.*                             project_q.* / project_hid.*  (no prefix)
=====================================================  ==============================================

A CTC-fine-tuned checkpoint (``Wav2VecCtc``) prefixes the encoder keys with
``w2v_encoder.w2v_model.`` and stores the output layer as ``w2v_encoder.proj``
(-> ``lm_head``).
"""

from __future__ import annotations

import argparse
import ast
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .configuration import Wav2Vec2Config

_ENCODER_RULES: list[tuple[str, str]] = [
    (r"^feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^feature_extractor\.conv_layers\.(\d+)\.2\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (r"^encoder\.pos_conv\.0\.weight_g$", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"^encoder\.pos_conv\.0\.weight_v$", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"^encoder\.pos_conv\.0\.bias$", "encoder.pos_conv_embed.conv.bias"),
    (r"^encoder\.layer_norm\.", "encoder.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.", r"encoder.layers.\1.attention."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layers.\1.layer_norm."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.layers.\1.feed_forward.intermediate_dense."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.layers.\1.feed_forward.output_dense."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.layers.\1.final_layer_norm."),
]
_HEAD_RULES: list[tuple[str, str]] = [
    (r"^quantizer\.vars$", "quantizer.codevectors"),
    (r"^quantizer\.weight_proj\.", "quantizer.weight_proj."),
    (r"^project_q\.", "project_q."),
    (r"^final_proj\.", "project_hid."),
]
# Buffers and training-only state that have no counterpart.
_DROPPED = re.compile(r"(_float_tensor|\.version)$|^encoder\.pos_conv\.0\.weight$")


def rename_legacy_weight_norm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``*.weight_g``/``*.weight_v`` (old ``torch.nn.utils.weight_norm``) -> parametrization keys."""
    out = {}
    for key, value in state_dict.items():
        key = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", key)
        key = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", key)
        out[key] = value
    return out


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pattern, repl in rules:
        if re.search(pattern, key):
            return re.sub(pattern, repl, key)
    return None


def convert_fairseq_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a fairseq wav2vec 2.0 state dict (pre-trained or CTC) to the Hugging Face layout.

    Raises ``ValueError`` listing any key it does not know, so nothing is silently lost.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if _DROPPED.search(key):
            continue
        if key.startswith("w2v_encoder.w2v_model."):
            key = key[len("w2v_encoder.w2v_model.") :]
        elif key.startswith("w2v_encoder.proj."):
            out["lm_head." + key[len("w2v_encoder.proj.") :]] = value
            continue
        if (new := _rename(key, _ENCODER_RULES)) is not None:
            out["wav2vec2." + new] = value
        elif (new := _rename(key, _HEAD_RULES)) is not None:
            out[new] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"unknown fairseq keys (not converted): {unknown}")
    return out


FAIRSEQ_CONV_LAYERS = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"
FAIRSEQ_DEFAULTS: dict[str, Any] = {  # fairseq's Wav2Vec2Config defaults, used for a missing (or None) field
    "conv_feature_layers": FAIRSEQ_CONV_LAYERS,
    "encoder_embed_dim": 768,
    "encoder_layers": 12,
    "encoder_attention_heads": 12,
    "encoder_ffn_embed_dim": 3072,
    "activation_fn": "gelu",
    "extractor_mode": "default",
    "layer_norm_first": False,
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "latent_vars": 320,
    "latent_groups": 2,
    "latent_dim": 0,
    "final_dim": 0,
    "num_negatives": 100,
    "logit_temp": 0.1,
    "mask_length": 10,
    "feature_grad_mult": 1.0,
}


def parse_conv_layers(spec: Any) -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` -> ``[(dim, kernel, stride), ...]``, without ``eval``.

    fairseq stores a Python expression such as ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"`` and
    evaluates it; here only list/tuple literals of integers, ``+`` of lists and ``*`` of a list
    by an integer are accepted (anything else is a ``ValueError`` naming the field).
    """
    try:
        value = _safe_list_expression(ast.parse(spec, mode="eval").body) if isinstance(spec, str) else spec
        layers = [tuple(layer) for layer in value]
    except (SyntaxError, TypeError, ValueError) as err:
        raise ValueError(f"conv_feature_layers {spec!r} is not a list of (dim, kernel, stride): {err}") from err
    bad = [layer for layer in layers if len(layer) != 3 or not all(isinstance(v, int) and v > 0 for v in layer)]
    if not layers or bad:
        raise ValueError(f"conv_feature_layers {spec!r}: every layer must be 3 positive integers, got {bad or 'none'}")
    return layers


def _safe_list_expression(node: ast.AST) -> Any:
    """Value of an expression made of int literals, lists, tuples, list + list and list * int."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_safe_list_expression(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _safe_list_expression(node.left), _safe_list_expression(node.right)
        if isinstance(node.op, ast.Add) and isinstance(left, list) and isinstance(right, list):
            return left + right
        if isinstance(node.op, ast.Mult) and {type(left), type(right)} == {list, int}:
            count = left if isinstance(left, int) else right
            if not 0 <= count <= 1000:
                raise ValueError(f"repeat count {count} out of range")
            return left * right
    raise ValueError(f"unsupported expression {ast.dump(node)[:80]}")


def config_from_fairseq(cfg: Mapping[str, Any], vocab_size: int | None = None) -> Wav2Vec2Config:
    """Build a config from a fairseq model config (``checkpoint['cfg']['model']`` or old ``args``).

    A field that is missing (or ``None``) takes fairseq's default (:data:`FAIRSEQ_DEFAULTS`).
    """
    cfg = dict(cfg.get("w2v_args", {}).get("model", {}), **cfg) if "w2v_args" in cfg else dict(cfg)
    cfg = {**FAIRSEQ_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    layers = parse_conv_layers(cfg["conv_feature_layers"])
    dim = cfg["encoder_embed_dim"]
    final_dim = cfg["final_dim"] or dim
    latent_dim = cfg["latent_dim"] or final_dim
    fields: dict[str, Any] = dict(
        hidden_size=dim,
        num_hidden_layers=cfg["encoder_layers"],
        num_attention_heads=cfg["encoder_attention_heads"],
        intermediate_size=cfg["encoder_ffn_embed_dim"],
        hidden_act=cfg["activation_fn"],
        feat_extract_norm="layer" if cfg["extractor_mode"] == "layer_norm" else "group",
        do_stable_layer_norm=bool(cfg["layer_norm_first"]),
        conv_dim=[c for c, _, _ in layers],
        conv_kernel=[k for _, k, _ in layers],
        conv_stride=[s for _, _, s in layers],
        conv_bias=bool(cfg["conv_bias"]),
        num_conv_pos_embeddings=cfg["conv_pos"],
        num_conv_pos_embedding_groups=cfg["conv_pos_groups"],
        num_codevectors_per_group=cfg["latent_vars"],
        num_codevector_groups=cfg["latent_groups"],
        codevector_dim=latent_dim,
        proj_codevector_dim=final_dim,
        num_negatives=cfg["num_negatives"],
        contrastive_logits_temperature=cfg["logit_temp"],
        mask_time_length=cfg["mask_length"],
        feature_grad_mult=cfg["feature_grad_mult"],
    )
    if vocab_size is not None:
        fields["vocab_size"] = vocab_size
    return Wav2Vec2Config(**fields)


def convert_fairseq_checkpoint(checkpoint: str | Path, output_dir: str | Path, trust_pickle: bool = False) -> Path:
    """Convert a fairseq ``.pt`` file into a standard folder (config.json + model.safetensors).

    Pre-trained checkpoints become ``Wav2Vec2ForPreTraining``, CTC ones
    ``Wav2Vec2ForCTC`` (sized from ``w2v_encoder.proj``). The fairseq file holds
    its config in pickled objects (omegaconf, argparse), which ``weights_only=True``
    refuses: pass ``trust_pickle=True`` only for a file from a source you trust,
    since unpickling can run arbitrary code.
    """
    from .ctc import Wav2Vec2ForCTC
    from .pretraining import Wav2Vec2ForPreTraining

    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"no fairseq checkpoint at {checkpoint}")
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{checkpoint} holds pickled objects beyond tensors; if you trust its source, "
            "convert it with trust_pickle=True (--trust-pickle)"
        ) from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), Mapping):
        found = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{checkpoint} is not a fairseq checkpoint: no 'model' state dict (found {found})")
    if not isinstance(ckpt.get("cfg"), (dict, type(None))):
        ckpt["cfg"] = _to_container(ckpt["cfg"])
    model_cfg = (ckpt.get("cfg") or {}).get("model") or vars(ckpt.get("args") or argparse.Namespace())
    state = convert_fairseq_state_dict(ckpt["model"])
    is_ctc = "lm_head.weight" in state
    vocab = state["lm_head.weight"].shape[0] if is_ctc else None
    config = config_from_fairseq(model_cfg, vocab_size=vocab)
    if not is_ctc and (model_cfg.get("quantize_targets") is False or "quantizer.codevectors" not in state):
        raise ValueError(
            f"{checkpoint} was pre-trained with quantize_targets=False (its targets are projected features, with "
            "no quantizer): wav2vec 2.0 here and in transformers always quantizes the targets, so this checkpoint "
            "cannot be converted as Wav2Vec2ForPreTraining; convert a checkpoint fine-tuned from it (CTC), or "
            "pre-train with quantize_targets=True"
        )
    model = (Wav2Vec2ForCTC if is_ctc else Wav2Vec2ForPreTraining)(config)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes that the config read from the checkpoint does not give
        raise ValueError(f"conversion mismatch: {checkpoint}: {str(err).strip()}") from None
    missing = set(result.missing_keys) - {"wav2vec2.masked_spec_embed"}  # absent when fairseq never masked
    if missing or result.unexpected_keys:
        raise ValueError(f"conversion mismatch: missing {sorted(missing)}, unexpected {result.unexpected_keys}")
    model.save_pretrained(output_dir)
    return Path(output_dir)


def _to_container(cfg: Any) -> dict:
    """omegaconf DictConfig -> plain dict, without importing omegaconf."""
    return {k: _to_container(v) if hasattr(v, "items") else v for k, v in cfg.items()}
