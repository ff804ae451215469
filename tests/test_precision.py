"""Without a GPU the scripts say ``--use_cpu``: bf16 autocast and torchrun processes then work on the CPU."""

from __future__ import annotations

import pytest
import torch

from hf_w2v2.finetune.arguments import parse_finetune_args
from hf_w2v2.training import precision
from hf_w2v2.training.precision import flag_value, use_cpu_without_accelerator


@pytest.fixture(autouse=True)
def no_bf16_probe(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--bf16`` on a CPU times a layer both ways; these tests are about flags, not speed."""
    if "probe" not in request.node.name:
        monkeypatch.setattr(precision, "time_bf16_vs_fp32", lambda: (0.02, 0.01))


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


def test_bf16_slower_than_fp32_warns_with_the_measurement(monkeypatch, caplog) -> None:
    monkeypatch.setattr(precision, "has_accelerator", lambda: False)
    monkeypatch.setattr(precision, "time_bf16_vs_fp32", lambda: (0.010, 0.025))  # bf16 2.5x slower
    with caplog.at_level("WARNING", logger=precision.__name__):
        assert use_cpu_without_accelerator(["--bf16"])[-2:] == ["--use_cpu", "True"]
    assert "0.40x the fp32" in caplog.text and "25.0 ms vs 10.0 ms" in caplog.text
    caplog.clear()
    monkeypatch.setattr(precision, "time_bf16_vs_fp32", lambda: (0.020, 0.010))
    with caplog.at_level("WARNING", logger=precision.__name__):
        use_cpu_without_accelerator(["--bf16"])
        use_cpu_without_accelerator(["--max_steps", "3"])  # no --bf16: nothing measured
    assert caplog.text == ""


def test_bf16_probe_measures_both_ways() -> None:
    fp32, bf16 = precision.time_bf16_vs_fp32(rounds=1)
    assert fp32 > 0 and bf16 > 0
