"""End to end on the FSDD fixture with tiny models: classification, x-vectors (verification), frame labels,
the output folder in stock transformers, and the classify / verify / embed commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForAudioClassification, pipeline

from hf_w2v2.classify.arguments import parse_classify_args
from hf_w2v2.classify.inference import classify_files, load_clip, load_model, score_trials
from hf_w2v2.classify.run import run_classification
from hf_w2v2.classify.splits import write_split
from hf_w2v2.classify.vad import make_vad_corpus
from hf_w2v2.classify.verification import equal_error_rate
from hf_w2v2.cli import main

FSDD = Path(__file__).parent / "fixtures" / "fsdd"
CLIP = str(FSDD / "audio" / "1_theo_2.flac")
COMMON = [
    "--config_name",
    "tiny",
    "--do_train",
    "--max_steps",
    "3",
    "--per_device_train_batch_size",
    "4",
    "--learning_rate",
    "1e-3",
    "--save_strategy",
    "no",
    "--report_to",
    "none",
    "--disable_tqdm",
    "True",
    "--use_cpu",
    "True",
]


def run(tmp_path: Path, *extra: str):
    args = parse_classify_args([*COMMON, "--output_dir", str(tmp_path / "out"), *extra])
    torch.manual_seed(0)
    return run_classification(*args)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    out = tmp_path_factory.mktemp("splits")
    write_split(FSDD / "metadata.csv", "take>=2", out / "train.csv")
    write_split(FSDD / "metadata.csv", "take<2", out / "test.csv")
    write_split(FSDD / "metadata.csv", "take<2,label!=2", out / "test_01.csv")
    return out


@pytest.mark.slow
def test_sequence_classification_folder_loads_in_stock_transformers(tmp_path, splits):
    result = run(
        tmp_path,
        *("--train_data", str(splits / "train.csv"), "--eval_data", str(splits / "test.csv")),
        *("--balance", "weights", "--test_data", f"sub={splits / 'test_01.csv'}"),
    )
    out = Path(result.output_dir)
    for name in ("model.safetensors", "preprocessor_config.json", "README.md", "confusion_eval.png", "report_eval.txt"):
        assert (out / name).is_file(), name
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0 and "eval_macro_f1" in result.metrics
    assert "pipeline_tag: audio-classification" in (out / ("README.md")).read_text()
    assert "macro-F1" in (out / "report_eval.txt").read_text()
    assert len((out / "predictions_sub.tsv").read_text().splitlines()) == 1 + 12

    stock = AutoModelForAudioClassification.from_pretrained(out).eval()
    assert type(stock).__module__.startswith("transformers.") and stock.config.id2label[2] == "2"
    ours = load_model(str(out))
    audio = torch.from_numpy(load_clip(CLIP, 400))[None]
    with torch.no_grad():
        assert torch.allclose(ours(audio).logits, stock(audio).logits, atol=1e-5)
    top = classify_files(ours, [CLIP], top_k=3)[0].labels
    raw, _ = __import__("soundfile").read(CLIP, dtype="float32")
    from hf_w2v2.data.audio import resample

    piped = pipeline("audio-classification", model=str(out), device="cpu")(
        {"raw": resample(raw, 8000, 16000), "sampling_rate": 16000}, top_k=3
    )
    assert piped[0]["label"] == top[0][0]
    assert piped[0]["score"] == pytest.approx(top[0][1], abs=1e-4)


def test_bad_label_column_and_one_class_fail_before_training(tmp_path, splits):
    with pytest.raises(ValueError, match="no label column 'digit'"):
        run(tmp_path, "--train_data", str(splits / "train.csv"), "--label_column", "digit")
    write_split(FSDD / "metadata.csv", "label=0", tmp_path / "zeros.csv")
    with pytest.raises(ValueError, match="only the class '0'"):
        run(tmp_path, "--train_data", str(tmp_path / "zeros.csv"))


@pytest.mark.slow
def test_unseen_eval_classes_are_counted(tmp_path, splits):
    write_split(FSDD / "metadata.csv", "take>=2,label!=2", tmp_path / "train01.csv")
    result = run(tmp_path, "--train_data", str(tmp_path / "train01.csv"), "--eval_data", str(splits / "test.csv"))
    assert result.metrics["eval_skipped_unseen_class"] == 6  # label 2: 3 speakers x takes 0-1
    report = (Path(result.output_dir) / "data_report.txt").read_text()
    assert "6 with a class unseen in training {'2': 6}" in report


@pytest.mark.slow
def test_xvector_aam_verification_and_cli(tmp_path, splits, capsys):
    result = run(
        tmp_path,
        *("--task", "xvector", "--label_column", "speaker_id", "--train_data", str(splits / "train.csv")),
        *("--eval_data", str(splits / "test.csv"), "--config_overrides", '{"xvector_loss": "aam_softmax"}'),
    )
    out = Path(result.output_dir)
    stored = json.loads((out / "verification.json").read_text())
    assert 0.0 <= stored["eer"] <= 1.0 and stored["speakers"] == ["george", "jackson", "theo"]
    assert stored["target_trials"] == 3 * 15 and (out / "det_eval.png").is_file()
    assert json.loads((out / "config.json").read_text())["xvector_loss"] == "aam_softmax"
    scores, targets = score_trials(load_model(str(out)), str(out / "trials_eval.txt"))  # files re-read from disk
    assert np.allclose(scores, np.loadtxt(out / "scores_eval.txt"), atol=1e-5)
    assert equal_error_rate(scores, targets)[0] <= 1.0
    a, b = str(FSDD / "audio" / "0_george_0.flac"), str(FSDD / "audio" / "1_george_1.flac")
    capsys.readouterr()  # drop the training logs
    assert main(["verify", str(out), a, b]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["threshold"] == pytest.approx(stored["threshold"])
    assert answer["same_speaker"] == (answer["score"] >= stored["threshold"])
    assert main(["embed", str(out), str(FSDD / "audio"), "--output", str(tmp_path / "e.npz")]) == 0
    saved = np.load(tmp_path / "e.npz")
    assert saved["embeddings"].shape == (36, 8) and len(saved["files"]) == 36
    assert main(["verify", str(out), a, str(tmp_path / "gone.flac")]) == 2
    assert "audio file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_frame_classification_reports_frame_f1(tmp_path):
    sources = sorted(str(p) for p in (FSDD / "audio").glob("*.flac"))
    make_vad_corpus(sources, tmp_path / "vad", num_clips=8, seconds=1.0, seed=0)
    template = tmp_path / "card.md"  # a custom card template works for every job, not only CTC
    template.write_text("---\n$metadata\n---\n\nCustom card of $model_name.\n\n$eval_table\n")
    result = run(
        tmp_path,
        *("--task", "frame", "--label_column", "segments", "--train_data", str(tmp_path / "vad")),
        *("--eval_data", str(tmp_path / "vad"), "--card_template", str(template)),
    )
    assert 0.0 <= result.metrics["eval_frame_f1"] <= 1.0 and "eval_frame_precision" in result.metrics
    card = (Path(result.output_dir) / "README.md").read_text()
    assert "Custom card of out." in card and "| set | clips | frame_f1 | frame_precision | frame_recall |" in card
    assert "voice-activity-detection" in card and "pipeline_tag" not in card  # no Hub pipeline for frame labels


def test_classify_command(tmp_path, capsys):
    from hf_w2v2.classify.model import build_classifier

    model = build_classifier("sequence", ["no", "yes"], config_name="tiny")
    model.save_pretrained(tmp_path / "m")
    assert main(["classify", str(tmp_path / "m"), CLIP, "--top-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["file"] == CLIP and {x["label"] for x in line["labels"]} == {"no", "yes"}
    assert sum(x["score"] for x in line["labels"]) == pytest.approx(1.0, abs=1e-5)
    assert main(["classify", str(tmp_path / "m"), str(tmp_path / "nothing.wav")]) == 2


@pytest.mark.slow
def test_cached_frozen_features_give_the_audio_paths_losses(tmp_path, splits):
    """--cache_frozen_features: the one cache of fine-tuning (training.feature_cache), same losses as the audio path."""

    def losses(out: Path, *extra: str) -> list[float]:
        args = parse_classify_args(
            [*COMMON, "--output_dir", str(out), "--train_data", str(splits / "train.csv")]
            + ["--config_overrides", '{"feat_extract_norm": "layer"}', "--frozen_conv_layers", "4"]
            + ["--mask_time_length", "2", "--logging_steps", "1", "--seed", "0", *extra]
        )
        run_classification(*args)
        state = json.loads((out / "trainer_state.json").read_text())
        return [row["loss"] for row in state["log_history"] if "loss" in row]

    plain = losses(tmp_path / "plain")
    cached = losses(tmp_path / "cached", "--cache_frozen_features", "True")
    assert len(plain) == 3
    np.testing.assert_allclose(cached, plain, rtol=2e-4)
