"""NaN/inf losses are skipped and counted, and a run of nothing else stops (issue 23.15)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_w2v2.training.nonfinite import NONFINITE_METRIC, NonFiniteLossError, NonFiniteLossMixin


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": ((self.linear(x).squeeze(-1) - labels) ** 2).mean()}


class GuardedTrainer(NonFiniteLossMixin, Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs=False, num_items_in_batch=num_items_in_batch)
        return self.guard_loss(model, loss)


def _train(out: Path, bad: set[int], steps: int = 6, **kwargs) -> tuple[GuardedTrainer, dict]:
    """Items in ``bad`` have a NaN label, so every micro-batch holding one has a NaN loss."""
    torch.manual_seed(0)
    data = [{"x": torch.randn(3), "labels": torch.tensor(float("nan") if i in bad else 0.5)} for i in range(steps * 2)]
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=2,
        train_sampling_strategy="sequential",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
        learning_rate=0.1,
    )
    trainer = GuardedTrainer(model=Toy(), args=args, train_dataset=data, **kwargs)
    return trainer, trainer.train().metrics


def test_nonfinite_batches_are_skipped_counted_and_logged(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        trainer, metrics = _train(tmp_path, bad={2, 7})  # batches 1 and 3 (steps 2 and 4)
    assert metrics[NONFINITE_METRIC] == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert "step 2: loss is nan, micro-batch skipped (1 so far)" in caplog.text
    assert "step 4: loss is nan" in caplog.text and "2 of 6 training micro-batches" in caplog.text


def test_without_the_guard_nan_reaches_the_weights(tmp_path: Path) -> None:
    """What happened before: one NaN batch and the model is NaN."""
    trainer, metrics = _train(tmp_path, bad={2}, skip_nonfinite_loss=False)
    assert NONFINITE_METRIC not in metrics
    assert not all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_run_of_only_nonfinite_losses_stops_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="every one of the 4 training micro-batches had a NaN/inf loss"):
        _train(tmp_path, bad=set(range(8)), steps=4)
    with pytest.raises(NonFiniteLossError, match="step 3: 3 micro-batches in a row"):
        _train(tmp_path, bad=set(range(12)), steps=6, nonfinite_patience=3)


def test_ctc_trainer_skips_an_unalignable_transcript(tmp_path: Path) -> None:
    """CTC fine-tuning: a transcript longer than its frames gives an inf loss; it is skipped, by default."""
    from hf_w2v2 import Wav2Vec2ForCTC
    from hf_w2v2.finetune.trainer import CTCTrainer
    from hf_w2v2.models.configuration import config_from_name

    model = Wav2Vec2ForCTC(config_from_name("tiny", vocab_size=8)).train()
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = CTCTrainer(model=model, args=args)
    inputs = {"input_values": torch.randn(1, 4000), "labels": torch.randint(1, 8, (1, 200))}
    assert not torch.isfinite(model(**inputs).loss)
    loss = trainer.compute_loss(model, inputs)
    loss.backward()
    assert loss.item() == 0.0 and (trainer.nonfinite_skipped, trainer.loss_batches) == (1, 1)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
