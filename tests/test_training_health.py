"""Health monitor (issue 23.16): warnings that name the step and the values for runs that go wrong silently."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from transformers import TrainingArguments

from hf_w2v2.training.health import HealthMonitorCallback, HealthThresholds


def _monitor(tmp_path, warmup_steps: int = 2, codevectors: tuple[int, int] | None = (2, 320)) -> HealthMonitorCallback:
    monitor = HealthMonitorCallback()
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=warmup_steps, report_to="none", use_cpu=True)
    config = (
        SimpleNamespace(num_codevector_groups=codevectors[0], num_codevectors_per_group=codevectors[1])
        if codevectors
        else None
    )
    monitor.on_train_begin(args, SimpleNamespace(max_steps=100), None, model=SimpleNamespace(config=config))
    return monitor


def _state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step)


def test_all_blank_ctc_output_after_warmup_warns_after_n_evaluations(tmp_path, caplog) -> None:
    monitor = _monitor(tmp_path, codevectors=None)
    args = None
    for step in (1, 2):  # during warm-up: no warning however blank
        monitor.on_evaluate(args, _state(step), None, metrics={"eval_blank_output_fraction": 1.0})
    monitor.on_evaluate(args, _state(3), None, metrics={"eval_blank_output_fraction": 1.0, "eval_loss": 80.0})
    monitor.on_evaluate(args, _state(4), None, metrics={"eval_blank_output_fraction": 0.5})  # streak broken
    assert monitor.warnings == []
    with caplog.at_level(logging.WARNING, logger="hf_w2v2.training.health"):
        for step in (5, 6, 7):
            monitor.on_evaluate(
                args, _state(step), None, metrics={"eval_blank_output_fraction": 1.0, "eval_loss": 79.5}
            )
    assert monitor.warnings == [
        "step 7: CTC output has been all blank (every eval transcript empty) for 3 evaluations after warm-up "
        "(eval_loss 79.5); raise the learning rate or train longer, check the labels and the vocabulary"
    ]
    assert "health: step 7" in caplog.text


def test_codebook_collapse_and_trivial_contrastive_task_warn(tmp_path) -> None:
    monitor = _monitor(tmp_path)
    healthy = {"codevector_perplexity": 300.0, "contrastive_accuracy": 0.6, "contrastive_loss": 2.1}
    monitor.on_log(None, _state(10), None, logs=healthy)
    monitor.on_log(None, _state(1), None, logs={"codevector_perplexity": 3.0})  # warm-up: low perplexity is normal
    assert monitor.warnings == []
    monitor.on_log(None, _state(20), None, logs={"codevector_perplexity": 12.5})
    monitor.on_log(None, _state(30), None, logs={"eval_contrastive_accuracy": 1.0, "eval_contrastive_loss": 0.0004})
    assert monitor.warnings[0].startswith("step 20: codevector_perplexity 12.5 is below 10% of the 640 codevectors")
    assert monitor.warnings[1].startswith("step 30: eval_contrastive_accuracy 1.0000 with eval_contrastive_loss 0.0004")
    assert len(monitor.warnings) == 2


def test_exploding_and_nonfinite_gradient_norms_warn(tmp_path) -> None:
    monitor = _monitor(tmp_path)
    for step, norm in enumerate([1.0, 1.2, 0.9, 1.1, 1.0, 5.0], start=1):  # 5x the median: fine
        monitor.on_log(None, _state(step), None, logs={"grad_norm": norm, "loss": 1.0})
    assert monitor.warnings == []
    monitor.on_log(None, _state(7), None, logs={"grad_norm": 55.0})
    monitor.on_log(None, _state(8), None, logs={"grad_norm": float("inf")})
    assert monitor.warnings[0].startswith("step 7: gradient norm 55 is 52.4x the median 1.05 of the last 6 logged")
    assert monitor.warnings[1] == "step 8: gradient norm is inf"


def test_thresholds_are_settable_and_trainers_install_the_monitor(tmp_path) -> None:
    from hf_w2v2 import Wav2Vec2ForCTC
    from hf_w2v2.finetune.trainer import CTCTrainer
    from hf_w2v2.models.configuration import config_from_name

    assert HealthMonitorCallback(HealthThresholds(blank_evaluations=1)).thresholds.blank_evaluations == 1
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = CTCTrainer(model=Wav2Vec2ForCTC(config_from_name("tiny", vocab_size=8)), args=args)
    assert sum(isinstance(cb, HealthMonitorCallback) for cb in trainer.callback_handler.callbacks) == 1


def test_ctc_metrics_report_the_blank_output_fraction() -> None:
    import numpy as np
    from transformers import EvalPrediction

    from hf_w2v2.finetune.metrics import CTCMetrics

    vocab = {"[PAD]": 0, "A": 1, "B": 2, "|": 3, "[UNK]": 4}
    tokenizer = SimpleNamespace(
        decode=lambda ids, group_tokens=True: "".join("AB"[i - 1] for i in ids if i),
        get_vocab=lambda: vocab,
        pad_token="[PAD]",
        unk_token="[UNK]",
        word_delimiter_token="|",
    )  # what the greedy decoder and the label decoding read of a CTC tokenizer
    metrics = CTCMetrics(tokenizer)  # type: ignore[arg-type]
    out = metrics(EvalPrediction(predictions=np.zeros((3, 5), dtype=int), label_ids=np.ones((3, 2), dtype=int)))
    assert out["blank_output_fraction"] == 1.0
