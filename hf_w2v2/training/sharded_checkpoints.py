"""A checkpoint written by sharded training, turned into a standard model folder.

Under FSDP with ``fsdp_state_dict_type: SHARDED_STATE_DICT`` (``examples/accelerate/fsdp.yaml``) a
``checkpoint-N`` holds each rank's shard of the weights (``pytorch_model_fsdp_0/``, a torch
distributed checkpoint) and of the optimizer; under DeepSpeed ZeRO it holds each rank's partition
(``global_stepN/``, plus ``model.safetensors`` only when ``stage3_gather_16bit_weights_on_model_save``
is on). Both resume as they are. :func:`consolidate_checkpoint` reads the shards in one process, without
a process group, and writes ``config.json`` + ``model.safetensors`` through the model's own
``save_pretrained``: a folder that ``from_pretrained`` (ours and stock transformers') loads.

    hf-w2v2 consolidate runs/x/checkpoint-2000 runs/x-step2000

The final model of a run needs none of this: the trainer gathers it whole at the end
(:class:`hf_w2v2.training.distributed.ShardingTrainerMixin`, DeepSpeed's 16-bit gather).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

import hf_w2v2.models as models
from hf_w2v2.models.configuration import Wav2Vec2Config

FSDP_MODEL = "pytorch_model_fsdp_0"
"""Folder of the FSDP model shards in a checkpoint (accelerate's name for the first model)."""
DEEPSPEED_LATEST = "latest"
"""File naming the ``global_stepN`` folder of a DeepSpeed checkpoint."""


def checkpoint_kind(checkpoint: Path) -> str:
    """``"fsdp"``, ``"deepspeed"`` or ``"whole"`` (a ``model.safetensors`` already there)."""
    if (checkpoint / FSDP_MODEL).is_dir():
        return "fsdp"
    if (checkpoint / DEEPSPEED_LATEST).is_file():
        return "deepspeed"
    if (checkpoint / "model.safetensors").is_file():
        return "whole"
    raise ValueError(
        f"{checkpoint}: neither FSDP shards ({FSDP_MODEL}/), a DeepSpeed checkpoint ({DEEPSPEED_LATEST} + "
        "global_step*/) nor model.safetensors: not a checkpoint folder of a training run"
    )


def _fsdp_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The whole state dict from the FSDP shards (accelerate's merge, no process group)."""
    from accelerate.utils import merge_fsdp_weights

    with tempfile.TemporaryDirectory() as scratch:
        merge_fsdp_weights(str(checkpoint / FSDP_MODEL), scratch, safe_serialization=True)
        return load_file(str(Path(scratch) / "model.safetensors"))


def _deepspeed_state_dict(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The fp32 master weights from the ZeRO partitions (DeepSpeed's ``zero_to_fp32``)."""
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError as error:
        raise ImportError(f"{checkpoint} is a DeepSpeed checkpoint: pip install deepspeed to read it") from error
    return dict(get_fp32_state_dict_from_zero_checkpoint(str(checkpoint)))


def consolidate_checkpoint(checkpoint: str | Path, output_dir: str | Path) -> Path:
    """Write ``output_dir`` (config.json + model.safetensors) from the sharded ``checkpoint``; returns it.

    The config is the checkpoint's own ``config.json`` (or, failing that, its run folder's); every
    weight of the model must be in the shards (loaded strictly).
    """
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    config_dir = next((d for d in (checkpoint, checkpoint.parent) if (d / "config.json").is_file()), None)
    if config_dir is None:
        raise ValueError(f"{checkpoint}: no config.json here or in {checkpoint.parent}: cannot tell the model")
    config = Wav2Vec2Config.from_pretrained(config_dir)
    architecture = (config.architectures or ["Wav2Vec2ForPreTraining"])[0]
    model_class = getattr(models, architecture, None)
    if model_class is None:
        raise ValueError(f"{config_dir}/config.json: architecture {architecture!r} is not a model of hf_w2v2.models")
    kind = checkpoint_kind(checkpoint)
    if kind == "fsdp":
        state_dict = _fsdp_state_dict(checkpoint)
    elif kind == "deepspeed":
        state_dict = _deepspeed_state_dict(checkpoint)
    else:
        state_dict = load_file(str(checkpoint / "model.safetensors"))
    model = model_class(config)
    model.load_state_dict(state_dict, strict=True)
    model.save_pretrained(output_dir)
    return output_dir
