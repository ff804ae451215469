"""The low-label study end to end in its quick mode (tiny model, a few steps): subsets, held-out voices,
pre-training, both inits, greedy and LM scores, table and plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("pyctcdecode")
pytest.importorskip("kenlm")

from hf_w2v2.studies.low_label import (
    StudyConfig,
    hold_out_voices,
    label_subsets,
    read_pool,
    run_study,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def test_subsets_are_seeded_nested_and_hold_no_unseen_voice() -> None:
    pool = read_pool(str(FIXTURES / "finetune" / "train"))
    train, unseen = hold_out_voices(pool, 1, seed=0)
    assert unseen and {c.voice for c in unseen}.isdisjoint({c.voice for c in train})
    subsets = label_subsets(train, [0.05, 0.2], seed=0)
    small, large, everything = subsets["0.05min"], subsets["0.2min"], subsets["all"]
    assert sum(c.seconds for c in small) >= 3.0 and sum(c.seconds for c in small[:-1]) < 3.0  # 0.05 min = 3 s
    assert large[: len(small)] == small and len(everything) == len(train)  # nested
    assert label_subsets(train, [0.05], seed=0)["0.05min"] == small  # seeded
    assert label_subsets(train, [0.05], seed=1)["all"] != everything


@pytest.mark.slow
def test_quick_study_runs_every_cell_and_writes_the_table(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # recipes are named relative to the repository root
    config = StudyConfig(
        output_dir=str(tmp_path / "study"),
        pool=str(FIXTURES / "finetune" / "train"),
        dev_data=str(FIXTURES / "finetune" / "dev"),
        lm_corpus=str(FIXTURES / "decoding" / "corpus.txt"),
        label_minutes=[0.1],
        heldout_voices=1,
        unlabeled_hours=0,
        unseen_utterances=0,
        lm_order=3,
        quick=True,
        pretrain_minutes=5,
        finetune_minutes=5,
    )
    results = run_study(config)
    assert sorted(results["runs"]) == ["0.1min/pretrained", "0.1min/random", "all/pretrained", "all/random"]
    for run in results["runs"].values():
        for score_set in ("dev", "unseen_voices"):
            assert run[score_set]["greedy_cer"] >= 0.0 and run[score_set]["lm_wer"] is not None
    out = Path(config.output_dir)
    rows = (out / "table.md").read_text().splitlines()
    assert len(rows) == 2 + 4 * 2 and "| 0.1min | pretrained | 4-gram |" in "\n".join(rows)
    assert (out / "low_label.png").stat().st_size > 1000
    with open(out / "labels" / "unseen_voices.csv", encoding="utf-8") as handle:
        unseen = {row["voice"] for row in csv.DictReader(handle)}
    assert unseen == set(results["voices_held_out"])
    assert json.loads((out / "results.json").read_text())["hours"]["labels_all"] > 0
    assert (out / "all-random" / "study_scores.json").is_file()
    again = run_study(config)  # a rerun reuses every finished model and its scores
    assert again["runs"] == results["runs"]
