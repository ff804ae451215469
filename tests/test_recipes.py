"""The shipped recipes in examples/configs parse, and the continuation recipe starts where pre-training ends.

A recipe that no longer parses (a renamed option, a typo) or a continuation that starts from a folder
no earlier recipe writes would make the documented commands fail only after minutes of work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_w2v2.finetune.arguments import parse_finetune_args
from hf_w2v2.pretrain.arguments import parse_pretrain_args

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
PRETRAIN_RECIPES = sorted(CONFIGS.glob("pretrain_*.json"))
FINETUNE_RECIPES = sorted(CONFIGS.glob("finetune_*.yaml"))


def test_there_are_recipes_to_check() -> None:
    assert len(PRETRAIN_RECIPES) >= 2 and len(FINETUNE_RECIPES) >= 2


@pytest.mark.parametrize("recipe", FINETUNE_RECIPES, ids=lambda p: p.name)
def test_finetune_recipe_parses(recipe: Path) -> None:
    model, data, _, training = parse_finetune_args([str(recipe)])
    assert training.output_dir and (model.model_name_or_path or model.config_name)
    assert data.train_data


@pytest.mark.parametrize("recipe", PRETRAIN_RECIPES, ids=lambda p: p.name)
def test_pretrain_recipe_parses(recipe: Path) -> None:
    _, _, data, training, _ = parse_pretrain_args([str(recipe)])
    assert data.train_source and training.output_dir


def test_pretrain_continuations_start_where_an_earlier_recipe_ends() -> None:
    recipes = {p.name: json.loads(p.read_text()) for p in PRETRAIN_RECIPES}
    outputs = {r["output_dir"] for r in recipes.values()}
    assert len(outputs) == len(recipes), "two recipes write the same folder"
    for name, recipe in recipes.items():
        start = recipe.get("init_from")
        if start is not None and start.startswith("runs/"):
            assert start in outputs, f"{name} starts from {start}, which no recipe writes"
            assert start != recipe["output_dir"], f"{name} would overwrite its own initialisation"
