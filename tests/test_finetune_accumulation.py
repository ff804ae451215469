"""Gradient accumulation through the real Trainer path: 2 micro-batches of b vs one batch of 2b.

What holds (``Wav2Vec2ForCTC.forward`` has no ``**kwargs``, so the Trainer divides each
micro-batch loss by the accumulation steps):

* ``ctc_loss_reduction="mean"``: the accumulated gradient *equals* the 2b-batch gradient
  (mean of two means of b equal-size halves = mean over 2b).
* ``ctc_loss_reduction="sum"``: the accumulated gradient is the 2b-batch gradient divided
  by the accumulation steps (the Trainer averages micro-batch sums). A head that took
  ``**kwargs`` would make the Trainer skip that division and break both identities.
"""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback, TrainingArguments

from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.finetune.trainer import CTCTrainer
from hf_w2v2.models.configuration import tiny
from hf_w2v2.models.ctc import Wav2Vec2ForCTC

pytest.importorskip("accelerate")

SAMPLES = 4000  # 0.25 s per item: 12 frames of the tiny encoder


class GradCapture(TrainerCallback):
    """Copies every gradient just before the first optimizer step."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if not self.grads:
            self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _dataset(n: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        audio = torch.randn(SAMPLES, generator=gen)
        labels = torch.randint(3, 10, (3 + i % 4,), generator=gen)  # different label lengths
        items.append({"input_values": audio.numpy(), "labels": labels.tolist()})
    return items


def _grads(reduction: str, batch: int, accumulation: int, tmp_path) -> tuple[dict[str, torch.Tensor], CTCTrainer]:
    torch.manual_seed(0)
    config = tiny(
        vocab_size=10,
        ctc_loss_reduction=reduction,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        final_dropout=0.0,
        mask_time_prob=0.0,
        feat_extract_norm="layer",
    )
    model = Wav2Vec2ForCTC(config)
    capture = GradCapture()
    args = TrainingArguments(
        output_dir=str(tmp_path / f"{reduction}-{batch}x{accumulation}"),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        max_steps=1,
        max_grad_norm=0.0,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = CTCTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(2 * 4),
        data_collator=DataCollatorCTCWithPadding(return_attention_mask=True),
        callbacks=[capture],
    )
    trainer.train()
    return capture.grads, trainer


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_accumulated_gradients_match_one_big_batch(reduction, tmp_path):
    full, trainer = _grads(reduction, batch=8, accumulation=1, tmp_path=tmp_path)
    accumulated, _ = _grads(reduction, batch=4, accumulation=2, tmp_path=tmp_path)
    assert trainer.model_accepts_loss_kwargs is False  # so the Trainer divides by accumulation steps
    assert full.keys() == accumulated.keys() and len(full) > 10
    scale = 1.0 if reduction == "mean" else 0.5
    for name, grad in full.items():
        torch.testing.assert_close(accumulated[name], grad * scale, rtol=1e-4, atol=1e-7, msg=name)


def test_evaluation_after_training_steps_sees_the_new_weights(tmp_path):
    """An evaluation inside training must score the current weights (no stale inference cache)."""
    torch.manual_seed(0)
    config = tiny(vocab_size=10, layerdrop=0.0, mask_time_prob=0.0, feat_extract_norm="layer")
    model = Wav2Vec2ForCTC(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / "eval"),
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-2,
        eval_strategy="steps",
        eval_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    data = _dataset(8)
    trainer = CTCTrainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=data,
        data_collator=DataCollatorCTCWithPadding(return_attention_mask=True),
    )
    trainer.train()
    in_process = trainer.evaluate()["eval_loss"]
    fresh = Wav2Vec2ForCTC(config)
    fresh.load_state_dict(model.state_dict())
    trainer.model = fresh
    assert in_process == pytest.approx(trainer.evaluate()["eval_loss"], rel=1e-5)
