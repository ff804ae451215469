"""The model-card template ships inside the package, renders every job's card, and the shipped model's card is
stored once."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.finetune.card import CTC_CARD, ctc_placeholders
from hf_w2v2.training.model_card import (
    TEMPLATE_RESOURCE,
    CardInputs,
    CardSection,
    CardTask,
    EvalRow,
    default_template,
    render_model_card,
    training_hyperparameters,
)

ROOT = Path(__file__).resolve().parents[1]


def ctc_inputs(**fields: Any) -> CardInputs:
    """A CTC card's inputs, as fine-tuning hands them in, for a 16 kHz model."""
    return CardInputs(task=CTC_CARD, extra=ctc_placeholders(TARGET_SAMPLING_RATE), **fields)


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
    assert "$metadata" in template and "$sections" in template
    row = EvalRow(split="eval", size=3, metrics={"wer": 0.25, "cer": 0.125}, dataset="dev", hours=0.01)
    card = render_model_card(ctc_inputs(model_name="my-model", evals=[row]))
    assert "# my-model" in card and "0.250" in card and "$" not in card.replace("$ ", "")
    assert (
        "| data | split | utterances | hours | WER | CER |\n|---|---|---|---|---|---|\n| dev | eval | 3 | 0.01 |"
        in card
    )
    assert "## How to use" in card  # a section of the CTC task's


def test_before_training_rows_are_in_the_table_not_in_the_hub_metadata() -> None:
    metrics = {"wer": 0.9, "cer": 0.7}
    before = EvalRow("eval (before training)", 3, metrics, dataset="dev", hours=0.01, before_training=True)
    after = EvalRow(split="eval", size=3, metrics={"wer": 0.2, "cer": 0.1}, dataset="dev", hours=0.01)
    card = render_model_card(ctc_inputs(model_name="m", evals=[before, after]))
    front_matter, body = card.split("\n---\n", 1)
    assert "0.900" in body and "0.200" in body
    assert "value: 0.9\n" not in front_matter and "value: 0.2\n" in front_matter


def test_a_missing_custom_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere.md"):
        render_model_card(ctc_inputs(model_name="m"), tmp_path / "nowhere.md")


def test_a_custom_template_gets_every_placeholder(tmp_path: Path) -> None:
    template = tmp_path / "mine.md"
    template.write_text("# $model_name\n$eval_table\n$limitations\nrate $sampling_rate\n$price $$5\n")
    card = render_model_card(ctc_inputs(model_name="m", limitations="none known"), template)
    assert card == "# m\nNo evaluation was run.\nnone known\nrate 16000\n$price $5\n"  # unknown names stay


def test_a_section_placeholder_the_job_did_not_hand_in_is_named() -> None:
    task = CardTask(tags=("wav2vec2",), sections=(CardSection("Try it", "hf-w2v2 classify $folder"),))
    with pytest.raises(ValueError, match=r"'Try it' uses \$folder.*CardInputs.extra"):
        render_model_card(CardInputs(model_name="m", task=task))


def test_a_task_without_a_result_type_keeps_its_rows_out_of_the_hub_metadata() -> None:
    """Rows without a corpus name their set in the table ("set") and in the Hub metadata (dataset, no split)."""
    row = EvalRow(split="eval", size=4, metrics={"accuracy": 0.5}, notes="two speakers")
    sections = (CardSection("Evaluation", "$eval_table"),)
    listed_task = CardTask(tags=("t",), sections=sections, result_task="audio-classification")
    listed = render_model_card(CardInputs(model_name="m", task=listed_task, evals=[row]))
    assert "| set | clips | accuracy | notes |\n|---|---|---|---|\n| eval | 4 | 0.5000 | two speakers |" in listed
    assert "type: audio-classification" in listed and "name: eval" in listed and "split:" not in listed
    unlisted = render_model_card(CardInputs(model_name="m", task=CardTask(tags=("t",), sections=sections), evals=[row]))
    assert "model-index" not in unlisted and "| eval | 4 | 0.5000 | two speakers |" in unlisted


def test_cards_in_model_cards_are_the_model_folders_readmes() -> None:
    cards = sorted((ROOT / "model_cards").glob("*.md"))
    assert cards
    for card in cards:
        assert card.is_symlink(), f"{card.name}: keep one copy (the model folder's README.md) and link to it"
        target = card.resolve()
        assert target.name == "README.md" and target.parent.parent == ROOT / "models" and target.is_file()


def test_how_to_use_resamples_an_8khz_clip_to_the_model_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card's snippet, run on an 8 kHz FSDD clip, reads what hf-w2v2 transcribe reads (it said
    ``sampling_rate=16000`` whatever the clip's rate: "EVX" for "THREE")."""
    from hf_w2v2 import Transcriber

    card = render_model_card(ctc_inputs(model_name="m"))
    assert "sampling_rate=16000" not in card and "16000 Hz mono" in card and "ffmpeg" in card
    snippet = card.split("## How to use", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    model, clip = ROOT / "models/w2v2-small-synth-en", ROOT / "examples/data/fsdd-digits/dev/audio/3_jackson_6.flac"
    printed: list[str] = []
    monkeypatch.setattr("builtins.print", lambda text: printed.append(text))
    exec(snippet.replace("MODEL_FOLDER", str(model)).replace("clip.flac", str(clip)), {})
    expected = next(iter(Transcriber.from_pretrained(model).transcribe_files([clip]))).transcription.text
    assert printed == [expected]


def test_card_epochs_are_the_epochs_run() -> None:
    """With max_steps set, TrainingArguments' num_train_epochs (3.0) is not what ran."""
    args = SimpleNamespace(max_steps=800, num_train_epochs=3.0, learning_rate=1e-3)
    assert training_hyperparameters(args, epochs_run=21.052631)["num_train_epochs"] == 21.05
    assert "num_train_epochs" not in training_hyperparameters(args)  # ignored by the Trainer, so not shown
    args.max_steps = -1
    assert training_hyperparameters(args)["num_train_epochs"] == 3.0
