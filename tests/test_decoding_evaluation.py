"""Greedy-vs-LM evaluation on a labelled folder, and the evaluate_ctc.py example's wiring."""

from __future__ import annotations

import json
import runpy
import shutil
import sys
from pathlib import Path

import pytest
from fixtures.decoding.tiny import CORPUS, FIXTURES, UTTERANCES, save_model_folder

from hf_w2v2.data.sources import read_source
from hf_w2v2.inference.evaluation import evaluate_ctc, split_for_tuning
from hf_w2v2.inference.transcribe import Transcriber

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "evaluate_ctc.py"


@pytest.fixture
def dataset(tmp_path) -> Path:
    folder = tmp_path / "data"
    (folder / "audio").mkdir(parents=True)
    lines = ["file_name,text"]
    for copy in range(2):
        for name, text in UTTERANCES.items():
            target = f"audio/{copy}_{name}"
            shutil.copy(FIXTURES / name, folder / target)
            lines.append(f"{target},{text.lower()}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_split_for_tuning_is_seeded_and_disjoint() -> None:
    tune, rest = split_for_tuning(10, 0.3, seed=1)
    assert len(tune) == 3 and sorted(tune + rest) == list(range(10))
    assert split_for_tuning(10, 0.3, seed=1) == (tune, rest)
    with pytest.raises(ValueError, match="tune_fraction"):
        split_for_tuning(10, 1.0, seed=0)


def test_greedy_only_report(tmp_path, dataset: Path) -> None:
    save_model_folder(tmp_path / "model")
    transcriber = Transcriber.from_pretrained(tmp_path / "model")
    report = evaluate_ctc(transcriber, read_source(dataset), progress=False)
    assert report.num_utterances == 4 and report.lm_wer is None
    assert report.greedy_wer > 0.5  # a random model
    assert report.rows[0].reference == "AND I WILL BE THEIR GOD"  # references are normalised
    report.write(tmp_path / "out")
    assert len((tmp_path / "out" / "utterances.jsonl").read_text().splitlines()) == 4


def test_example_script_tunes_and_saves_the_decoder(tmp_path, dataset: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("pyctcdecode")
    pytest.importorskip("kenlm")
    from hf_w2v2.decoding.arpa import build_arpa

    model_dir = tmp_path / "model"
    save_model_folder(model_dir)
    build_arpa(CORPUS, tmp_path / "lm.arpa", order=2, progress=False)
    argv = [
        "evaluate_ctc.py",
        "--model",
        str(model_dir),
        "--data",
        str(dataset),
        "--lm",
        str(tmp_path / "lm.arpa"),
        "--tune",
        "--alphas",
        "0.0",
        "1.0",
        "--betas",
        "0.0",
        "--tune_beam_width",
        "4",
        "--beam_width",
        "8",
        "--output_dir",
        str(tmp_path / "out"),
        "--save_decoder",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["num_utterances"] == 3 and summary["lm_wer"] is not None  # 1 of 4 held out for tuning
    assert summary["alpha"] in (0.0, 1.0) and len(summary["tuning"]["trials"]) == 2
    rows = [json.loads(line) for line in (tmp_path / "out" / "utterances.jsonl").read_text().splitlines()]
    assert sum(r["tuning_set"] for r in rows) == 1 and all(r["beam"] is None for r in rows if r["tuning_set"])
    assert "greedy_wer" in printed and "decoder saved" in printed
    restored = Transcriber.from_pretrained(model_dir)
    assert restored.decoder is not None and restored.decoder.tuning["alpha"] == summary["alpha"]
