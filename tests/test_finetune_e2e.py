"""Slow end-to-end check: a small random model fine-tuned on four clips of the mini corpus for
about a minute (150 steps) learns them (the loss falls) and stops predicting only blanks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("datasets")
pytest.importorskip("jiwer")

from hf_w2v2.finetune import parse_finetune_args, run_finetuning

FIXTURE = Path(__file__).parent / "fixtures" / "finetune"
OVERRIDES = (
    '{"feat_extract_norm": "layer", "do_stable_layer_norm": true, "hidden_size": 64, '
    '"intermediate_size": 128, "conv_dim": [32, 32, 32, 32, 32, 32, 32], "num_attention_heads": 4}'
)


@pytest.fixture()
def one_thread():
    """A model this small runs faster on one thread (and a shared CI core is not oversubscribed)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_loss_falls_and_outputs_stop_being_blank(tmp_path, one_thread):
    train = FIXTURE / "train"
    args = parse_finetune_args(
        [
            "--config_name",
            "tiny",
            "--config_overrides",
            OVERRIDES,
            "--train_data",
            str(train),
            "--eval_data",
            str(train),
            "--max_train_samples",
            "4",
            "--max_eval_samples",
            "4",
            "--output_dir",
            str(tmp_path / "out"),
            "--do_train",
            "--max_steps",
            "150",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "3e-3",
            "--warmup_steps",
            "20",
            "--lr_scheduler_type",
            "linear",
            "--mask_time_prob",
            "0.0",
            "--layerdrop",
            "0.0",
            "--hidden_dropout",
            "0.0",
            "--final_dropout",
            "0.0",
            "--ctc_loss_reduction",
            "mean",
            "--train_sampling_strategy",
            "group_by_length",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--logging_steps",
            "10",
            "--report_to",
            "none",
            "--seed",
            "0",
            "--disable_tqdm",
            "True",
            "--use_cpu",
            "True",
        ]
    )
    result = run_finetuning(*args)
    out = Path(result.output_dir)
    losses = [
        float(e["loss"]) for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e
    ]
    assert losses[-1] < 0.6 * losses[0], losses
    rows = list(csv.DictReader((out / "predictions_eval.tsv").open(), delimiter="\t"))
    non_blank = [r for r in rows if r["hypothesis"].strip()]
    assert len(non_blank) >= len(rows) // 2, rows
    assert result.metrics["eval_cer"] < 0.8
