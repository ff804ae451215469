"""The model-card template ships inside the package and the shipped model's card is stored once."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from hf_w2v2.training.model_card import TEMPLATE_RESOURCE, CardInputs, EvalRow, default_template, render_model_card

ROOT = Path(__file__).resolve().parents[1]


def test_template_is_package_data() -> None:
    import hf_w2v2.training

    path = Path(hf_w2v2.training.__file__).parent / TEMPLATE_RESOURCE
    assert path.is_file()
    section = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools.package-data]", 1)[1]
    patterns = re.findall(r'"([^"]+)"', re.search(r"^hf_w2v2 = \[(.*?)\]", section, re.M).group(1))
    assert any(fnmatch.fnmatch(f"training/{TEMPLATE_RESOURCE}", pattern) for pattern in patterns)
    assert not (ROOT / "model_cards" / "template.md").exists(), "one template: the package's"


def test_default_card_fills_the_package_template() -> None:
    template = default_template()
    assert "$eval_table" in template and "$hyperparameters_table" in template
    row = EvalRow(dataset="dev", split="eval", wer=0.25, cer=0.125, utterances=3, hours=0.01)
    card = render_model_card(CardInputs(model_name="my-model", evals=[row]))
    assert "# my-model" in card and "0.250" in card and "$eval_table" not in card
    assert "## How to use" in card  # a section only the package's template has


def test_before_training_rows_are_in_the_table_not_in_the_hub_metadata() -> None:
    before = EvalRow(dataset="dev", split="eval (before training)", wer=0.9, cer=0.7, utterances=3, hours=0.01)
    after = EvalRow(dataset="dev", split="eval", wer=0.2, cer=0.1, utterances=3, hours=0.01)
    before.before_training = True
    card = render_model_card(CardInputs(model_name="m", evals=[before, after]))
    front_matter, body = card.split("\n---\n", 1)
    assert "0.900" in body and "0.200" in body
    assert "value: 0.9\n" not in front_matter and "value: 0.2\n" in front_matter


def test_a_missing_custom_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere.md"):
        render_model_card(CardInputs(model_name="m"), tmp_path / "nowhere.md")


def test_cards_in_model_cards_are_the_model_folders_readmes() -> None:
    cards = sorted((ROOT / "model_cards").glob("*.md"))
    assert cards
    for card in cards:
        assert card.is_symlink(), f"{card.name}: keep one copy (the model folder's README.md) and link to it"
        target = card.resolve()
        assert target.name == "README.md" and target.parent.parent == ROOT / "models" and target.is_file()
