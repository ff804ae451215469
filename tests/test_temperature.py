"""Gumbel temperature schedule and its TrainerCallback."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_w2v2.pretrain.temperature import GumbelSchedule, GumbelTemperatureCallback, gumbel_temperature


def test_paper_schedule_values():
    assert gumbel_temperature(0) == 2.0
    assert math.isclose(gumbel_temperature(100_000), 2.0 * 0.999995**100_000)
    floor_step = math.ceil(math.log(0.25) / math.log(0.999995))  # ~277k updates to reach 0.5
    assert gumbel_temperature(floor_step - 1000) > 0.5
    assert gumbel_temperature(floor_step) == 0.5
    assert gumbel_temperature(400_000) == 0.5  # the paper trains base for 400k updates


def test_schedule_is_monotone_and_bounded():
    schedule = GumbelSchedule(start=2.0, end=0.5, decay=0.99)
    values = [schedule(step) for step in range(0, 500, 7)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert min(values) == 0.5 and max(values) == 2.0


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(step=-1), "step"), (dict(step=0, decay=1.5), "decay"), (dict(step=0, start=0.1, end=0.5), "end")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gumbel_temperature(**kwargs)


class RecordingModel(nn.Module):
    """Stands in for Wav2Vec2ForPreTraining: records the temperature seen by each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.temperature = None
        self.seen: list[float] = []

    def set_gumbel_temperature(self, temperature: float) -> None:
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.training:
            self.seen.append(self.temperature)
        return {"loss": ((x - self.weight) ** 2).mean()}


class Rows(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": torch.tensor([float(index)])}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_callback_follows_optimizer_steps_and_logs(tmp_path, accumulation):
    schedule = GumbelSchedule(start=2.0, end=0.5, decay=0.5)
    model = RecordingModel()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=1,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[GumbelTemperatureCallback(schedule)])
    trainer.train()
    optimizer_steps = 16 // (2 * accumulation)
    assert trainer.state.global_step == optimizer_steps
    # Every micro-batch of optimizer step s (0-based) ran at tau(s).
    expected = [schedule(step) for step in range(optimizer_steps) for _ in range(accumulation)]
    assert model.seen == expected
    logged = [entry["gumbel_temperature"] for entry in trainer.state.log_history if "loss" in entry]
    assert logged == [schedule(step) for step in range(1, optimizer_steps + 1)]


def test_callback_rejects_a_model_without_temperature(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=1, save_strategy="no")
    model = nn.Linear(1, 1)
    model.forward = lambda x: {"loss": x.sum()}
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), callbacks=[GumbelTemperatureCallback()])
    with pytest.raises(ValueError, match="set_gumbel_temperature"):
        trainer.train()
