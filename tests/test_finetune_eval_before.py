"""``--eval_before_training`` scores other splits through the Trainer without changing how the eval split
is scored during training (each split trims predictions with its own frame counts)."""

from __future__ import annotations

from types import SimpleNamespace

from hf_w2v2.finetune.arguments import DataArguments
from hf_w2v2.finetune.card import split_prefix
from hf_w2v2.finetune.metrics import CTCMetrics
from hf_w2v2.finetune.run import evaluate_split
from hf_w2v2.models.configuration import tiny
from hf_w2v2.training.lifecycle import RunResult


class RecordingTrainer:
    """Stands in for the Trainer: records the metrics function each evaluation used."""

    def __init__(self) -> None:
        self.compute_metrics = "the eval split's metrics"
        self.processing_class = SimpleNamespace(tokenizer=None)
        self.model = SimpleNamespace(config=tiny())
        self.used: list[tuple[str, CTCMetrics]] = []

    def predict(self, dataset, metric_key_prefix: str) -> SimpleNamespace:
        self.used.append((metric_key_prefix, self.compute_metrics))
        return SimpleNamespace(metrics={f"{metric_key_prefix}_wer": 0.5, f"{metric_key_prefix}_cer": 0.25})

    def log(self, logs: dict[str, float]) -> None:
        pass

    def log_metrics(self, split: str, metrics: dict[str, float]) -> None:
        pass

    def save_metrics(self, split: str, metrics: dict[str, float]) -> None:
        pass

    def is_world_process_zero(self) -> bool:
        return False


def split(name: str, samples: list[int]) -> SimpleNamespace:
    report = SimpleNamespace(kept=len(samples), kept_seconds=sum(samples) / 16000)
    return SimpleNamespace(name=name, dataset=object(), frame_source_lengths=samples, names=[], report=report)


def test_evaluating_another_split_puts_the_trainers_metrics_back(tmp_path) -> None:
    trainer = RecordingTrainer()
    unseen = split("unseen-speaker", [16000, 8000])
    result = RunResult(output_dir=str(tmp_path))
    data_args = DataArguments(test_data=[f"unseen-speaker={tmp_path}"])
    evaluate_split(trainer, unseen, data_args, result, before_training=True)  # type: ignore[arg-type]
    assert result.metrics == {"test_unseen-speaker_before_wer": 0.5, "test_unseen-speaker_before_cer": 0.25}
    assert result.rows[0].before_training and result.rows[0].split == "unseen-speaker (before training)"
    prefix, used = trainer.used[0]
    assert prefix == "test_unseen-speaker_before" and isinstance(used, CTCMetrics)
    assert used.frame_counts is not None and len(used.frame_counts) == 2 and used.frame_counts[0] > used.frame_counts[1]
    assert trainer.compute_metrics == "the eval split's metrics"


def test_split_prefixes() -> None:
    assert split_prefix(split("eval", [])) == "eval"
    assert split_prefix(split("eval", []), before_training=True) == "eval_before"
    assert split_prefix(split("real", []), before_training=True) == "test_real_before"
