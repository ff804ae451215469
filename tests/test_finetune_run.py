"""``run_finetuning`` end to end on the mini corpus (tiny model, a few steps): output folder,
model card, predictions, curves, Hub push (mocked), bad-input counts, exact resume."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

pytest.importorskip("datasets")
pytest.importorskip("jiwer")
pytest.importorskip("matplotlib")

from hf_w2v2.finetune import parse_finetune_args, run_finetuning

FIXTURE = Path(__file__).parent / "fixtures" / "finetune"


def _args(out: Path, *extra: str, train: Path = FIXTURE / "train", dev: Path = FIXTURE / "dev"):
    argv = [
        "--config_name",
        "tiny",
        "--config_overrides",
        '{"feat_extract_norm": "layer"}',
        "--train_data",
        str(train),
        "--eval_data",
        str(dev),
        "--output_dir",
        str(out),
        "--do_train",
        "--max_steps",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "3e-3",
        "--mask_time_prob",
        "0.05",
        "--mask_time_length",
        "2",
        "--layerdrop",
        "0.0",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--seed",
        "0",
        "--disable_tqdm",
        "True",
        "--use_cpu",
        "True",
        "--preprocessing_num_workers",
        "1",
        *extra,
    ]
    return parse_finetune_args(argv)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny-ctc"
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["repo_id"] = repo_id

    def upload_folder(self, repo_id, folder_path, ignore_patterns=None, **kwargs):
        calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        calls["ignore"] = ignore_patterns
        return "https://huggingface.co/me/tiny-ctc/commit/0"

    with (
        mock.patch("huggingface_hub.HfApi.create_repo", create_repo),
        mock.patch("huggingface_hub.HfApi.upload_folder", upload_folder),
    ):
        args = _args(
            out, "--push_to_hub", "True", "--hub_model_id", "me/tiny-ctc", "--test_data", f"again={FIXTURE / 'dev'}"
        )
        given = args[3].to_dict()
        result = run_finetuning(*args)
    assert args[3].to_dict() == given  # the run works on its own copy of TrainingArguments
    return out, result, calls


def test_output_folder_is_a_standard_model_folder(straight_run):
    out, result, _ = straight_run
    for name in (
        "model.safetensors",
        "config.json",
        "vocab.json",
        "tokenizer_config.json",
        "processor_config.json",
        "README.md",
        "training_curves.png",
        "predictions_eval.tsv",
        "predictions_again.tsv",
        "all_results.json",
        "train_results.json",
        "eval_results.json",
        "data_report.txt",
    ):
        assert (out / name).is_file(), name
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == len(json.loads((out / "vocab.json").read_text()))
    assert {"eval_wer", "eval_cer", "test_again_wer", "test_again_cer"} <= set(result.metrics)
    assert result.metrics["eval_cer"] == pytest.approx(result.metrics["test_again_cer"])


def test_model_card_has_hub_metadata_and_tables(straight_run):
    out, result, _ = straight_run
    card = (out / "README.md").read_text()
    header = card.split("---")[1]
    for key in ("language: en", "license: apache-2.0", "- wer", "- cer", "model-index", "tags", "datasets"):
        assert key in header, key
    assert f"{result.metrics['eval_wer']:.3f}" in card
    assert "learning_rate" in card and "Limitations" in card and "Intended use" in card
    assert "$" not in card.replace("$ ", "")  # every placeholder filled


def test_predictions_file_names_every_utterance(straight_run):
    out, _, _ = straight_run
    rows = list(csv.DictReader((out / "predictions_eval.tsv").open(), delimiter="\t"))
    dev = list(csv.DictReader((FIXTURE / "dev" / "metadata.csv").open()))
    assert sorted(Path(r["name"]).name for r in rows) == sorted(Path(r["file_name"]).name for r in dev)
    by_name = {Path(r["name"]).name: r for r in rows}
    assert all(by_name[Path(r["file_name"]).name]["reference"] == r["text"] for r in dev)


def test_push_uploads_the_final_folder_without_checkpoints(straight_run):
    out, result, calls = straight_run
    assert calls["repo_id"] == "me/tiny-ctc" and result.hub_url.startswith("https://")
    assert {"model.safetensors", "config.json", "vocab.json", "README.md", "training_curves.png"} <= set(calls["files"])
    assert "checkpoint-*" in calls["ignore"] and "checkpoint-2" in calls["files"]  # present but ignored


def test_resume_continues_exactly_and_refuses_another_vocabulary(straight_run, tmp_path):
    out, _, _ = straight_run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(out / "checkpoint-2", resumed / "checkpoint-2")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "vocab.json"):
        assert (resumed / "checkpoint-2" / name).is_file(), name
    run_finetuning(*_args(resumed, "--resume_from_checkpoint", "latest"))
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    a, b = load_file(out / "model.safetensors"), load_file(resumed / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    other = tmp_path / "other-train"
    shutil.copytree(FIXTURE / "train", other)
    rows = (other / "metadata.csv").read_text().splitlines()
    rows[1] = rows[1].replace(",HOW CAN YOU", ",ZANY HOW CAN YOU")  # adds 'Z' to the vocabulary
    (other / "metadata.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"vocabulary differs.*only in the new vocabulary: \['Z'\]"):
        run_finetuning(*_args(resumed, "--resume_from_checkpoint", "latest", train=other))


def test_bad_input_is_filtered_and_counted(tmp_path):
    corpus = tmp_path / "bad"
    shutil.copytree(FIXTURE / "train", corpus)
    sf.write(corpus / "audio" / "blip.wav", np.zeros(300, dtype=np.float32), 16000)  # < 400-sample field
    rows = list(csv.DictReader((corpus / "metadata.csv").open()))
    rows[0]["text"] = "?!"  # empty after normalisation
    rows[1]["text"] = "A VERY LONG TRANSCRIPT " * 6  # 132 labels for a ~1.9 s clip (~94 frames)
    rows.append({**rows[2], "file_name": "audio/blip.wav", "text": "BLIP"})
    with (corpus / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    dev = tmp_path / "dev"
    shutil.copytree(FIXTURE / "dev", dev)
    text = (dev / "metadata.csv").read_text().replace("LET ME MY", "LÉT ME MY")
    (dev / "metadata.csv").write_text(text)
    out = tmp_path / "out"
    run_finetuning(
        *_args(
            out,
            "--max_steps",
            "1",
            "--max_duration",
            "2.5",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            train=corpus,
            dev=dev,
        )
    )
    report = (out / "data_report.txt").read_text()
    long_clips = sum(float(r["duration"]) > 2.5 for r in rows[2:] if r["file_name"] != "audio/blip.wav")
    assert "1 transcript(s) empty" in report
    assert f"kept {len(rows) - 3 - long_clips}/{len(rows)} utterances" in report
    assert f"2 too short, {long_clips} too long" in report  # blip (receptive field) + labels > frames
    assert "1 character(s) missing from the vocabulary" in report and "'É':1" in report


def test_extra_train_data_is_appended_and_shapes_the_vocabulary(tmp_path):
    from hf_w2v2.finetune.card import data_section, training_corpora
    from hf_w2v2.finetune.prepare import prepare_data

    extra = tmp_path / "extra"
    shutil.copytree(FIXTURE / "train", extra)
    rows = list(csv.DictReader((extra / "metadata.csv").open()))
    rows[0]["text"] = "ZIGZAG " + rows[0]["text"]  # 'Z' is not in the main corpus
    with (extra / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    model_args, data_args, card_args, training_args = _args(tmp_path / "out", "--extra_train_data", str(extra))
    data = prepare_data(model_args, data_args, training_args, checkpoint=None)
    corpora = training_corpora(data_args, "train")
    assert [name for name, _ in corpora] == ["train", "extra"]
    assert "Training corpus: `train` + `extra`" in data_section(data_args, data, corpora)
    alone = prepare_data(*_args(tmp_path / "out2")[:2], training_args, checkpoint=None)
    assert "Z" in data.processor.tokenizer.get_vocab() and "Z" not in alone.processor.tokenizer.get_vocab()
    assert len(data.train.dataset) == 2 * len(alone.train.dataset)
    with pytest.raises(ValueError, match="extra_train_data needs train_data"):
        parse_finetune_args(["--config_name", "tiny", "--output_dir", str(tmp_path), "--extra_train_data", str(extra)])


def test_a_corpus_listed_twice_is_sampled_twice_and_named_once(tmp_path):
    from hf_w2v2.finetune.card import data_section, training_corpora
    from hf_w2v2.finetune.prepare import prepare_data

    twice = _args(tmp_path / "out", "--extra_train_data", str(FIXTURE / "train") + "/", str(FIXTURE / "dev"))
    data = prepare_data(twice[0], twice[1], twice[3], checkpoint=None)
    alone = prepare_data(*_args(tmp_path / "out2")[:2], twice[3], checkpoint=None)
    dev = prepare_data(*_args(tmp_path / "out3", "--train_data", str(FIXTURE / "dev"))[:2], twice[3], checkpoint=None)
    assert len(data.train.dataset) == 2 * len(alone.train.dataset) + len(dev.train.dataset)
    corpora = training_corpora(twice[1], "train")
    assert [name for name, _ in corpora] == ["train", "dev"]
    assert "Training corpus: `train` (x2: its clips are seen 2 times as often) + `dev`" in data_section(
        twice[1], data, corpora
    )
