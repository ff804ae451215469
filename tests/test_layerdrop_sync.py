"""LayerDrop decided in step across processes (issue 23.14): a pure function of (seed, step, micro-batch),
so two data-parallel processes run the same blocks; 2-process gloo training with LayerDrop (and with
gradient checkpointing) used to fail with "Expected to have finished reduction"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_ranks

from hf_w2v2 import Wav2Vec2Model
from hf_w2v2.models.configuration import config_from_name
from hf_w2v2.models.transformer import layerdrop_keep
from hf_w2v2.training.layerdrop import set_layerdrop_step

ROOT = Path(__file__).resolve().parents[1]


def test_layerdrop_keep_is_a_pure_function_of_seed_step_and_micro_batch() -> None:
    a = layerdrop_keep(12, 0.5, seed=3, step=7, micro_batch=1)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, layerdrop_keep(12, 0.5, seed=3, step=7, micro_batch=1))
    draws = {tuple(layerdrop_keep(12, 0.5, seed=3, step=s, micro_batch=m).tolist()) for s in range(20) for m in (0, 1)}
    assert len(draws) > 30  # steps and micro-batches get different decisions
    assert layerdrop_keep(12, 0.0, seed=0, step=0).all() and not layerdrop_keep(12, 1.0, seed=0, step=0).any()
    rate = torch.stack([layerdrop_keep(12, 0.3, seed=1, step=s) for s in range(500)]).float().mean()
    assert abs(rate.item() - 0.7) < 0.02


def _blocks_run(rank_seed: int, steps: int) -> list[list[int]]:
    """Which blocks ran at each step in a 'process' whose own RNG was seeded with ``rank_seed``."""
    torch.manual_seed(rank_seed)
    model = Wav2Vec2Model(config_from_name("tiny", layerdrop=0.5, num_hidden_layers=6)).train()
    ran: list[int] = []
    for index, block in enumerate(model.encoder.layers):
        block.register_forward_hook(lambda *_, i=index: ran.append(i))
    history = []
    for step in range(steps):
        set_layerdrop_step(model, seed=0, step=step)  # what LayerDropSyncCallback does before each step
        ran.clear()
        model(torch.randn(1, 4000))
        history.append(list(ran))
    return history


def test_two_processes_with_different_rng_run_the_same_blocks() -> None:
    first, second = _blocks_run(rank_seed=0, steps=8), _blocks_run(rank_seed=1, steps=8)
    assert first == second
    assert any(len(run) < 6 for run in first) and len({tuple(run) for run in first}) > 1  # layers were dropped


@pytest.mark.slow
@pytest.mark.parametrize("checkpointing", [False, True])
def test_two_gloo_processes_train_with_layerdrop(tmp_path: Path, checkpointing: bool) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone",  # a free port, not a fixed one another job may hold
        str(ROOT / "examples/finetune_ctc.py"), str(ROOT / "examples/configs/finetune_tiny_fixture.yaml"),
        "--train_data", str(ROOT / "tests/fixtures/finetune/train"),
        "--eval_data", str(ROOT / "tests/fixtures/finetune/dev"),
        "--output_dir", str(out),
        "--config_overrides", '{"feat_extract_norm": "layer", "do_stable_layer_norm": true, "num_hidden_layers": 4}',
        "--layerdrop", "0.5", "--gradient_checkpointing", str(checkpointing),
        "--max_steps", "4", "--eval_steps", "4", "--save_steps", "4", "--disable_tqdm", "True",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = run_ranks(
        lambda: subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600), clear=[out]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
