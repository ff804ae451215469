"""Atomic checkpoints and ``latest`` (issue 23.2): a save interrupted half-way leaves no ``checkpoint-N``
that a resume would pick; ``latest`` skips incomplete folders, says which and why."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_w2v2.training.checkpoints import (
    MODEL_STAGING,
    AtomicCheckpointMixin,
    CheckpointDiskFullError,
    checkpoint_problem,
    latest_complete_checkpoint,
    resolve_checkpoint,
)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": ((self.linear(x).squeeze(-1) - labels) ** 2).mean()}


class AtomicTrainer(AtomicCheckpointMixin, Trainer):
    pass


def _trainer(out: Path, **overrides) -> AtomicTrainer:
    torch.manual_seed(0)
    data = [{"x": torch.randn(3), "labels": torch.randn(())} for _ in range(16)]
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=4,
        save_steps=2,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=1,
        **overrides,
    )
    return AtomicTrainer(model=Toy(), args=args, train_dataset=data)


def _complete(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    save_file({"linear.weight": torch.ones(1, 3)}, folder / "model.safetensors")
    torch.save({"state": {}}, folder / "optimizer.pt")
    torch.save({"python": 1}, folder / "rng_state.pth")
    return folder


def test_latest_skips_incomplete_checkpoints_and_logs_them(tmp_path: Path, caplog) -> None:
    """The sweep's case: an empty checkpoint-90 and one with a 0-byte optimizer.pt hid an intact checkpoint-80."""
    intact = _complete(tmp_path / "checkpoint-80")
    (tmp_path / "checkpoint-90").mkdir()
    zero = _complete(tmp_path / "checkpoint-85")
    (zero / "optimizer.pt").write_bytes(b"")
    (tmp_path / ".staging-checkpoint-95").mkdir()
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint("latest", str(tmp_path)) == str(intact)
    log = caplog.text
    assert "checkpoint-90: no trainer_state.json" in log
    assert "checkpoint-85: empty file(s) ['optimizer.pt']" in log
    assert ".staging-checkpoint-95: an interrupted save" in log
    with pytest.raises(ValueError, match="cannot resume from .*checkpoint-85: empty file"):
        resolve_checkpoint(str(zero), str(tmp_path))
    (intact / "model.safetensors").unlink()
    assert checkpoint_problem(str(intact)).startswith("no weights file")
    with pytest.raises(ValueError, match="no complete checkpoint.*checkpoint-80: no weights file"):
        resolve_checkpoint(True, str(tmp_path))


def test_checkpoints_appear_whole_and_old_ones_rotate(tmp_path: Path) -> None:
    _trainer(tmp_path, save_total_limit=1).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]  # no staging folder left, 2 rotated out
    assert checkpoint_problem(str(tmp_path / "checkpoint-4")) is None
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_as_latest(tmp_path: Path, monkeypatch) -> None:
    trainer = _trainer(tmp_path)
    original = Trainer._save_rng_state

    def killed_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            raise KeyboardInterrupt("killed during the save")  # weights and optimizer written, the rest not
        original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-checkpoint-4", "checkpoint-2"]
    last, skipped = latest_complete_checkpoint(str(tmp_path))
    assert last == str(tmp_path / "checkpoint-2") and "interrupted save" in skipped[0]
    monkeypatch.setattr(Trainer, "_save_rng_state", original)
    resumed = _trainer(tmp_path)
    resumed.train(resume_from_checkpoint=resolve_checkpoint("latest", str(tmp_path)))
    assert resumed.state.global_step == 4 and (tmp_path / "checkpoint-4" / "rng_state.pth").is_file()
    assert not (tmp_path / ".staging-checkpoint-4").exists()  # the next save of that step replaced it


# --- damage inside the newest checkpoint, a full disk (issue 35) --------------------------------------
@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "rng_state.pth"])
def test_a_truncated_file_in_the_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog, name) -> None:
    older = _complete(tmp_path / "checkpoint-2")
    newest = _complete(tmp_path / "checkpoint-4")
    data = (newest / name).read_bytes()
    (newest / name).write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint("latest", str(tmp_path)) == str(older)
    assert f"checkpoint-4: {name} is damaged or truncated" in caplog.text
    with pytest.raises(ValueError, match=f"cannot resume from .*checkpoint-4: {name} is damaged or truncated"):
        resolve_checkpoint(str(newest), str(tmp_path))


def test_nan_weights_in_the_newest_checkpoint_fall_back_to_the_previous_one(tmp_path, caplog) -> None:
    older = _complete(tmp_path / "checkpoint-2")
    newest = _complete(tmp_path / "checkpoint-4")
    save_file({"linear.weight": torch.tensor([[1.0, float("nan"), 0.0]])}, newest / "model.safetensors")
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint("latest", str(tmp_path)) == str(older)
    assert "checkpoint-4: model.safetensors holds NaN/inf weights (linear.weight)" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at inline_container.cc:664] . unexpected pos 1280 vs 1174: basic_ios::clear: iostream error"
        ),
        OSError(28, "No space left on device"),
    ],
    ids=["torch-writer", "ENOSPC"],
)
def test_a_full_disk_during_a_save_is_named_and_leaves_no_staging_folder(tmp_path, monkeypatch, error) -> None:
    trainer = _trainer(tmp_path)
    original = Trainer._save_optimizer_and_scheduler

    def disk_full_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            Path(output_dir, "optimizer.pt").write_bytes(b"half")  # what the writer got out before failing
            raise error
        original(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_full_at_step_4)
    with pytest.raises(CheckpointDiskFullError, match=f"no space left on device: saving checkpoint-4 into {tmp_path}"):
        trainer.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]  # intact, and nothing half-written
    assert resolve_checkpoint("latest", str(tmp_path)) == str(tmp_path / "checkpoint-2")


def test_a_real_full_disk_during_a_save(tmp_path) -> None:
    """The same on a 64 kB tmpfs, where root may mount one (skipped elsewhere)."""
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with pytest.raises(CheckpointDiskFullError, match="no space left on device"):
            _trainer(small).train()
        assert not [p.name for p in small.iterdir() if p.name.startswith(".staging-")]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def test_the_final_model_appears_whole_and_an_interrupted_save_keeps_the_earlier_one(tmp_path, monkeypatch) -> None:
    """save_model writes to .staging-model and moves the files in: a Ctrl-C (or a kill) while the weights are
    written left half a model.safetensors in the output folder, which from_pretrained then failed on."""
    trainer = _trainer(tmp_path)
    trainer.train()
    trainer.save_model()
    weights = tmp_path / "model.safetensors"
    first = weights.read_bytes()
    assert (tmp_path / "training_args.bin").is_file() and not (tmp_path / MODEL_STAGING).exists()
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"a shard of an earlier, sharded save")
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    original = Trainer._save

    def interrupted(self, output_dir=None, state_dict=None):
        os.makedirs(output_dir, exist_ok=True)
        Path(output_dir, "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", interrupted)
    with torch.no_grad():
        trainer.model.linear.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_model()
    assert weights.read_bytes() == first and not (tmp_path / MODEL_STAGING).exists()
    monkeypatch.setattr(Trainer, "_save", original)
    trainer.save_model()
    torch.testing.assert_close(load_file(weights)["linear.weight"], trainer.model.linear.weight.detach())
    assert not (tmp_path / "model-00001-of-00002.safetensors").exists()  # stale weights of the earlier save
    assert not (tmp_path / "model.safetensors.index.json").exists() and not (tmp_path / MODEL_STAGING).exists()
    assert {p.name for p in tmp_path.glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-4"}  # as stock
