"""The run skeleton every job shares (hf_w2v2.training.lifecycle): the run's own copy of the arguments,
an evaluation that always restores what it swaps, and a finish that writes the health warnings."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import TrainingArguments

from hf_w2v2.training.lifecycle import RunResult, evaluate_set, finish_run, health_paragraph, start_run


def test_start_run_copies_the_arguments_and_never_mutates_them(tmp_path: Path) -> None:
    given = TrainingArguments(output_dir=str(tmp_path / "out"), push_to_hub=True, report_to="none")
    run = start_run(given, trains=False)
    run.args.remove_unused_columns = False
    assert run.push and not run.args.push_to_hub and run.args is not given
    assert given.push_to_hub and given.remove_unused_columns  # what the caller passed is untouched
    assert (tmp_path / "out").is_dir() and run.checkpoint is None


class FailingTrainer:
    compute_metrics = "during training"

    def predict(self, dataset, metric_key_prefix):
        assert self.compute_metrics == "this set's"
        raise RuntimeError("out of memory")


def test_evaluate_set_restores_the_trainers_metrics_even_when_it_fails() -> None:
    trainer = FailingTrainer()
    with pytest.raises(RuntimeError):
        evaluate_set(trainer, [], "test_x", "this set's")  # type: ignore[arg-type]
    assert trainer.compute_metrics == "during training"


def test_finish_run_writes_health_warnings_to_results_and_card(tmp_path: Path) -> None:
    run = start_run(TrainingArguments(output_dir=str(tmp_path), report_to="none"), trains=False)
    trainer = SimpleNamespace(
        is_world_process_zero=lambda: True,
        health_warnings=lambda: ["step 7: gradient norm is nan"],
        state=SimpleNamespace(log_history=[]),
    )
    card = lambda done: str(Path(tmp_path, "README.md").write_text("x" + health_paragraph(done.health_warnings)))
    result = finish_run(trainer, run, RunResult(output_dir=str(tmp_path), metrics={"eval_wer": 0.5}), card)
    saved = json.loads((tmp_path / "all_results.json").read_text())
    assert saved == {"eval_wer": 0.5, "health_warnings": ["step 7: gradient norm is nan"]}
    assert "gradient norm is nan" in (tmp_path / "README.md").read_text()
    assert result.health_warnings == ["step 7: gradient norm is nan"] and "curves" not in result.files
