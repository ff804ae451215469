"""The shipped keyword model ``models/w2v2-small-fsdd-digits`` (issue 22): a standard folder that stock
transformers loads, that names the ten digits, and that gets held-out recordings right.

The fixture clips (``tests/fixtures/fsdd``: takes 0-3 of george, jackson and theo) belong to FSDD's test
split (takes 0-4), which the model never trained on.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile
import torch
from transformers import AutoModelForAudioClassification, pipeline

from hf_w2v2 import Wav2Vec2ForSequenceClassification
from hf_w2v2.classify.inference import classify_files, load_model
from hf_w2v2.cli import main
from hf_w2v2.data.audio import resample

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "w2v2-small-fsdd-digits"
FSDD = Path(__file__).parent / "fixtures" / "fsdd"


def _fixture_clips() -> list[tuple[str, str]]:
    with open(FSDD / "metadata.csv", newline="") as handle:
        return [(str(FSDD / row["file_name"]), row["label"]) for row in csv.DictReader(handle)]


def test_folder_is_small_standard_and_carries_its_card() -> None:
    size = sum(f.stat().st_size for f in MODEL.rglob("*") if f.is_file())
    assert size <= 16 * 2**20, f"{MODEL.name} is {size / 2**20:.1f} MiB, over the 16 MiB the issue allows"
    config = json.loads((MODEL / "config.json").read_text())
    assert config["architectures"] == ["Wav2Vec2ForSequenceClassification"]
    assert [config["id2label"][str(i)] for i in range(10)] == [str(d) for d in range(10)]
    card = (MODEL / "README.md").read_text()
    assert "takes 0-4" in card and "accuracy" in card
    assert (ROOT / "model_cards" / f"{MODEL.name}.md").resolve() == (MODEL / "README.md").resolve()


def test_held_out_fixture_clips_are_recognised() -> None:
    clips = _fixture_clips()
    model = load_model(str(MODEL))
    predictions = classify_files(model, [path for path, _ in clips], top_k=1)
    correct = sum(p.labels[0][0] == label for p, (_, label) in zip(predictions, clips))
    assert correct >= len(clips) - 1, f"{correct}/{len(clips)} held-out fixture digits right"


def test_stock_transformers_and_pipeline_agree_with_ours() -> None:
    path, label = _fixture_clips()[-1]
    ours = Wav2Vec2ForSequenceClassification.from_pretrained(MODEL).eval()
    stock = AutoModelForAudioClassification.from_pretrained(MODEL).eval()
    assert type(stock).__module__.startswith("transformers.")
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x).logits, stock(x).logits, rtol=1e-4, atol=1e-4)
    raw, rate = soundfile.read(path, dtype="float32")
    clip = {"raw": resample(raw, rate, 16000), "sampling_rate": 16000}
    top = pipeline("audio-classification", model=str(MODEL), device="cpu")(clip, top_k=1)[0]
    assert top["label"] == label
    assert top["score"] == pytest.approx(classify_files(ours, [path], top_k=1)[0].labels[0][1], abs=1e-4)


def test_classify_command_on_the_shipped_model(capsys) -> None:
    path, label = _fixture_clips()[0]
    assert main(["classify", str(MODEL), path, "--top-k", "3"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert len(line["labels"]) == 3 and line["labels"][0]["label"] == label
