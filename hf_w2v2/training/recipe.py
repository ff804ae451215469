"""Recipe files: a YAML or JSON mapping of option names to values, read the same way by both trainers.

    python examples/finetune_ctc.py examples/configs/finetune_small_synth.yaml --max_steps 50
    python examples/pretrain.py examples/configs/pretrain_small.json --output_dir runs/x

A recipe given first sets any option of the run's argument dataclasses (``HfArgumentParser``);
options given after it on the command line win. On a machine without a GPU, ``--use_cpu True``
is added unless the recipe or the command line chooses (:mod:`hf_w2v2.training.precision`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from hf_w2v2.training.help import grouped_help, wants_help
from hf_w2v2.training.precision import use_cpu_without_accelerator

RECIPE_SUFFIXES = (".json", ".yaml", ".yml")


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON or YAML recipe file as a flat mapping of option names to values."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        values = json.loads(text)
    else:
        import yaml

        values = yaml.safe_load(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of option names to values")
    return values


def to_argv(values: dict[str, Any]) -> list[str]:
    """``{"max_steps": 10, "bf16": True}`` -> ``["--max_steps", "10", "--bf16", "True"]``."""
    argv: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            argv += [f"--{key}", *(str(v) for v in value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def parse_recipe_args(argument_classes: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse ``[RECIPE] [--option value ...]`` (``sys.argv[1:]`` by default) into ``argument_classes``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):  # grouped, the options that matter first (--help_all: all ~190)
        print(grouped_help(HfArgumentParser(list(argument_classes)), argument_classes, argv))  # type: ignore[arg-type]
        raise SystemExit(0)
    if argv and argv[0].endswith(RECIPE_SUFFIXES) and not argv[0].startswith("-"):
        argv = to_argv(read_config_file(argv[0])) + argv[1:]
    from hf_w2v2.training.distributed import check_launch  # here, not at the top: it imports the Trainer (slow --help)

    check_launch()  # a strategy this machine cannot run is refused before any data work
    argv = use_cpu_without_accelerator(argv)
    parser = HfArgumentParser(list(argument_classes))  # type: ignore[arg-type]  # dataclass types
    return tuple(parser.parse_args_into_dataclasses(args=argv))
