"""Without a GPU the scripts say ``--use_cpu``: bf16 autocast and torchrun processes then work on the CPU."""

from __future__ import annotations

import pytest
import torch

from hf_w2v2.finetune.arguments import parse_finetune_args
from hf_w2v2.training import precision
from hf_w2v2.training.precision import flag_value, use_cpu_without_accelerator


def test_flag_value_spellings() -> None:
    assert flag_value(["--bf16"], "bf16") == "True"
    assert flag_value(["--bf16", "false"], "bf16") == "false"
    assert flag_value(["--bf16=0", "--max_steps", "3"], "bf16") == "0"
    assert flag_value(["--use-cpu", "True"], "use_cpu") == "True"
    assert flag_value(["--bf16", "--bf16", "no"], "bf16") == "no"  # the last one wins
    assert flag_value(["--fp16"], "bf16") is None


def test_use_cpu_is_added_without_an_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "has_accelerator", lambda: False)
    assert use_cpu_without_accelerator(["--bf16"]) == ["--bf16", "--use_cpu", "True"]
    assert use_cpu_without_accelerator([], {"bf16": True}) == ["--use_cpu", "True"]
    assert use_cpu_without_accelerator(["--use_cpu", "false"]) == ["--use_cpu", "false"]  # explicit choice kept
    assert use_cpu_without_accelerator(["--max_steps", "3"], {"use_cpu": False}) == ["--max_steps", "3"]


def test_gpu_runs_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "has_accelerator", lambda: True)
    assert use_cpu_without_accelerator(["--bf16"]) == ["--bf16"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_finetune_recipe_with_bf16_parses_on_cpu() -> None:
    *_, training = parse_finetune_args(["examples/configs/finetune_small_synth.yaml", "--bf16", "--test_data", ""])
    assert training.bf16 and training.use_cpu


def test_empty_test_data_clears_the_recipe_list() -> None:
    _, data, _, _ = parse_finetune_args(["examples/configs/finetune_small_synth.yaml", "--test_data", ""])
    assert data.test_data == []
    _, data, _, _ = parse_finetune_args(["examples/configs/finetune_small_synth.yaml"])
    assert data.test_data == ["real-small=../shared/data/real-small"]
