"""Offline WER/CER, argmax before gathering, frame trimming, predictions file, time-budget schedule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import EvalPrediction, TrainerControl, TrainerState, TrainingArguments

pytest.importorskip("jiwer")

from hf_w2v2.finetune.metrics import (
    CTCMetrics,
    decode_labels,
    decode_predictions,
    error_rates,
    frame_counts_from_samples,
)
from hf_w2v2.finetune.predictions import read_predictions, write_predictions
from hf_w2v2.finetune.trainer import CTCTrainer
from hf_w2v2.text.vocab import load_tokenizer, save_vocab
from hf_w2v2.training.budget import (
    TimeBudgetCallback,
    budget_schedule_kwargs,
    lr_factor,
    saved_elapsed_seconds,
)
from hf_w2v2.training.trainer import argmax_logits


@pytest.fixture()
def tokenizer(tmp_path):
    vocab = {"[PAD]": 0, "[UNK]": 1, "|": 2, "A": 3, "B": 4, "C": 5}
    return load_tokenizer(save_vocab(vocab, tmp_path))


def test_error_rates_known_values():
    rates = error_rates(["A B C D"], ["A B X D"])
    assert rates["wer"] == pytest.approx(0.25)
    assert rates["cer"] == pytest.approx(1 / 7)
    assert error_rates(["AB", ""], ["AB", "junk"]) == {"wer": 0.0, "cer": 0.0}  # empty references skipped
    with pytest.raises(ValueError, match="hypotheses"):
        error_rates(["A"], [])


def test_argmax_logits_keeps_ids_not_logits():
    logits = torch.randn(2, 7, 6, generator=torch.Generator().manual_seed(0))
    ids = argmax_logits((logits,), torch.zeros(2, 3))
    assert ids.shape == (2, 7)
    assert torch.equal(ids, logits.argmax(-1))


def test_decode_merges_repeats_drops_blanks_and_trims_padding(tokenizer):
    # "A A _ B | C" with a repeated A, then padded frames predicting B (would add a "B").
    ids = np.array([[3, 3, 0, 3, 2, 5, 4, 4], [4, 0, 4, 5, -100, -100, -100, -100]])
    assert decode_predictions(ids, tokenizer, frame_counts=[6, 4]) == ["AA C", "BBC"]
    assert decode_predictions(ids, tokenizer)[0] == "AA CB"  # untrimmed: the padding leaks in
    labels = np.array([[3, 3, 2, 5], [4, -100, -100, -100]])
    assert decode_labels(labels, tokenizer) == ["AA C", "B"]


def test_frame_counts_follow_the_conv_stack():
    kernels, strides = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
    assert frame_counts_from_samples([16000, 400, 720], kernels, strides) == [49, 1, 2]


def test_ctc_metrics_on_eval_prediction(tokenizer):
    metric = CTCMetrics(tokenizer=tokenizer, frame_counts=[3, 2])
    pred = EvalPrediction(predictions=np.array([[3, 0, 4], [5, 5, -100]]), label_ids=np.array([[3, 4], [5, -100]]))
    out = metric(pred)
    assert out == {"wer": 0.0, "cer": 0.0, "blank_output_fraction": 0.0}
    assert metric.transcripts(pred) == (["AB", "C"], ["AB", "C"])


def test_predictions_file_worst_first(tmp_path):
    path = write_predictions(tmp_path / "p.tsv", ["a", "b", "c"], ["AB", "AB", ""], ["AB", "XY", "Q"])
    rows = read_predictions(path)
    assert [r["name"] for r in rows] == ["b", "a", "c"]
    assert float(rows[0]["cer"]) == 1.0 and rows[0]["hypothesis"] == "XY"
    assert math.isnan(float(rows[2]["wer"]))
    with pytest.raises(ValueError, match="names"):
        write_predictions(tmp_path / "q.tsv", ["a"], ["A", "B"], ["A", "B"])


def test_lr_factor_warms_up_then_ends_at_zero_with_the_budget():
    assert lr_factor(0, 0.0, 10, "linear") == pytest.approx(0.1)
    assert lr_factor(9, 0.5, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(500, 1.0, 10, "linear") == 0.0
    assert lr_factor(500, 1.0, 10, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(5, 0.025, 0.05, "linear") == pytest.approx(0.5)  # time-fraction warm-up
    assert lr_factor(5, 0.525, 0.05, "linear") == pytest.approx(0.5)
    assert lr_factor(3, 0.9, 2, "constant_with_warmup") == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 0.0, 1, "polynomial")


def test_warmup_stable_decay_holds_the_peak_then_decays_over_the_last_fraction():
    wsd = "warmup_stable_decay"
    assert lr_factor(5, 0.025, 0.05, wsd) == pytest.approx(0.5)  # same warm-up as the others
    assert lr_factor(50, 0.3, 0.05, wsd) == 1.0  # held at the peak ...
    assert lr_factor(50, 0.5, 0.05, wsd) == 1.0  # ... until 1 - decay_fraction (0.5 by default)
    assert lr_factor(50, 0.75, 0.05, wsd) == pytest.approx(0.5)
    assert lr_factor(50, 1.0, 0.05, wsd) == 0.0
    assert lr_factor(50, 0.8, 0.05, wsd, decay_fraction=0.4) == pytest.approx(0.5)
    assert lr_factor(50, 0.8, 0.05, wsd, decay_fraction=0.4, decay_type="cosine") == pytest.approx(0.5)
    assert lr_factor(50, 0.7, 0.05, wsd, decay_fraction=0.4, decay_type="cosine") == pytest.approx(
        0.5 + 0.5 * math.cos(math.pi / 4)
    )
    assert lr_factor(50, 0.5, 0.05, "linear") < 0.55  # the plain linear schedule is half-way down by then
    with pytest.raises(ValueError, match="decay_fraction"):
        lr_factor(0, 0.0, 0.05, wsd, decay_fraction=0.0)
    with pytest.raises(ValueError, match="decay_type"):
        lr_factor(0, 0.0, 0.05, wsd, decay_type="exponential")


def test_time_budget_schedule_kwargs_are_checked():
    assert budget_schedule_kwargs("linear", {}) == {}
    assert budget_schedule_kwargs("warmup_stable_decay", None) == {"decay_fraction": 0.5, "decay_type": "linear"}
    assert budget_schedule_kwargs("warmup_stable_decay", {"decay_fraction": 0.3, "decay_type": "cosine"}) == {
        "decay_fraction": 0.3,
        "decay_type": "cosine",
    }
    with pytest.raises(ValueError, match="not step counts"):
        budget_schedule_kwargs("warmup_stable_decay", {"num_decay_steps": 100})
    with pytest.raises(ValueError, match="not used"):
        budget_schedule_kwargs("linear", {"decay_fraction": 0.3})


def test_ctc_trainer_runs_the_warmup_stable_decay_schedule_on_the_budget(tmp_path):
    model = torch.nn.Linear(2, 2)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        learning_rate=1.0,
        warmup_steps=0.1,
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={"decay_fraction": 0.2},
    )
    budget = TimeBudgetCallback(max_minutes=1.0, elapsed_s=45.0)  # 75% spent: still at the peak
    trainer = CTCTrainer(model=model, args=args, time_budget=budget)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    assert trainer.lr_scheduler.lr_lambdas[0](3) == 1.0
    budget.elapsed_before = 54.0  # 90%: half-way through the last 20%
    assert trainer.lr_scheduler.lr_lambdas[0](4) == pytest.approx(0.5)
    bad = TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={"num_decay_steps": 5},
    )
    with pytest.raises(ValueError, match="not step counts"):
        CTCTrainer(model=model, args=bad, time_budget=budget).create_optimizer_and_scheduler(num_training_steps=10)
    from hf_w2v2.training.model_card import training_hyperparameters

    card = training_hyperparameters(args)  # the card says how the schedule decays
    assert (
        card["lr_scheduler_type"] == "warmup_stable_decay" and card["lr_scheduler_kwargs"] == '{"decay_fraction": 0.2}'
    )


def test_time_budget_stops_training_and_is_saved(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    state, control = TrainerState(), TrainerControl()
    fresh = TimeBudgetCallback(max_minutes=1.0, elapsed_s=30.0)
    fresh.on_train_begin(args, state, control)
    fresh.on_step_end(args, state, control)
    assert not control.should_training_stop and 0.5 <= fresh.progress() < 0.6
    budget = TimeBudgetCallback(max_minutes=1.0, elapsed_s=60.0)  # a resumed run whose time is spent
    budget.on_train_begin(args, state, control)
    budget.on_step_end(args, state, control)
    assert control.should_training_stop
    saved = {"stateful_callbacks": {"TimeBudgetCallback": budget.state()}}
    (tmp_path / "trainer_state.json").write_text(json.dumps(saved))
    assert saved_elapsed_seconds(tmp_path) >= 60.0
    assert saved_elapsed_seconds(tmp_path / "nowhere") == 0.0
    with pytest.raises(ValueError, match="positive"):
        TimeBudgetCallback(0)


def test_model_card_names_a_local_initialisation_and_keeps_it_out_of_the_hub_metadata():
    from hf_w2v2.finetune.card import CTC_CARD, ctc_placeholders
    from hf_w2v2.training.model_card import CardInputs, render_model_card

    extra = ctc_placeholders(16_000)
    local = CardInputs(model_name="m", task=CTC_CARD, initialisation="pre-trained weights from `runs/pt`", extra=extra)
    local_card = render_model_card(local)
    assert "**Initialisation:** pre-trained weights from `runs/pt`" in local_card
    assert "base_model" not in local_card.split("---")[1]  # a local folder is not a Hub id
    hub = render_model_card(CardInputs(model_name="m", task=CTC_CARD, base_model="facebook/wav2vec2-base", extra=extra))
    assert "**Initialisation:** facebook/wav2vec2-base" in hub and "base_model: facebook/wav2vec2-base" in hub
    scratch = render_model_card(CardInputs(model_name="m", task=CTC_CARD, extra=extra))
    assert "**Initialisation:** none (random initialisation)" in scratch


def test_a_schedule_the_budget_cannot_run_is_refused_before_any_data_work(tmp_path):
    from hf_w2v2.training.lifecycle import start_run

    def prepare_training_args(args: TrainingArguments, minutes: float | None = 5.0) -> TrainingArguments:
        return start_run(args, trains=False, labelled=True, max_train_minutes=minutes).args

    ok = TrainingArguments(output_dir=str(tmp_path), report_to="none", lr_scheduler_type="warmup_stable_decay")
    assert prepare_training_args(ok).label_names == ["labels"] and ok.label_names is None  # the run's own copy
    polynomial = TrainingArguments(output_dir=str(tmp_path), report_to="none", lr_scheduler_type="polynomial")
    with pytest.raises(ValueError, match="time-budget schedule"):
        prepare_training_args(polynomial)
    steps = TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={"num_decay_steps": 100},
    )
    with pytest.raises(ValueError, match="not step counts"):
        prepare_training_args(steps)
    assert prepare_training_args(polynomial, None).lr_scheduler_type == "polynomial"  # no budget: the Trainer's own
