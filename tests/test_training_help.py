"""``--help`` of the training scripts: grouped, the options most runs set first, every option with --help_all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hf_w2v2.finetune.arguments import ARGUMENT_CLASSES
from hf_w2v2.training.help import ESSENTIALS, HELP_ALL
from hf_w2v2.training.recipe import parse_recipe_args

ROOT = Path(__file__).resolve().parents[1]


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        parse_recipe_args(ARGUMENT_CLASSES, argv)
    assert stop.value.code == 0
    return capsys.readouterr().out


def test_help_is_grouped_with_the_options_that_matter_first(capsys: pytest.CaptureFixture[str]) -> None:
    grouped = help_text(["--help"], capsys)
    every = help_text([HELP_ALL], capsys)
    assert len(grouped.splitlines()) < 300 < 700 < len(every.splitlines())  # it was 800 lines
    first = grouped.split("the options most runs set:", 1)[1].split("\n\n", 1)[0]
    for name in ("model_name_or_path", "train_data", "eval_data", "output_dir", "max_steps", "learning_rate"):
        assert name in ESSENTIALS and f"--{name} VALUE" in first
    titles = [line for line in grouped.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert "Corpora, filters and vocabulary:" in titles and any("TrainingArguments" in t for t in titles)
    # every option of the job's own dataclasses is listed; of TrainingArguments only the key ones
    for option in ("--config_overrides", "--cache_frozen_features", "--test_data", "--card_template", "--bf16"):
        assert option in grouped
    assert "--fsdp_config" not in grouped and "--fsdp_config" in every
    assert help_text(["examples/configs/finetune_digits.yaml", "-h"], capsys) == grouped


def test_finetune_help_does_not_load_the_trainer_stack() -> None:
    """--help took 12.5 s: the Trainer (datasets, pandas, scipy) was imported before the options were read."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['finetune_ctc.py', '--help']\n"
        "try:\n    runpy.run_path('examples/finetune_ctc.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('transformers.trainer', 'datasets') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "the options most runs set" in done.stdout and done.stdout.strip().endswith("LOADED []"), done.stderr
