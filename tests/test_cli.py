"""The hf-w2v2 command line: transcribe and build-lm, output formats, bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fixtures.decoding.tiny import CORPUS, FIXTURES, save_model_folder

from hf_w2v2.cli import build_parser, main
from hf_w2v2.decoding.formats import group_words, srt_timestamp, to_srt
from hf_w2v2.decoding.outputs import Span, Transcription

ROOT = Path(__file__).resolve().parents[1]
UTT1, UTT2 = str(FIXTURES / "utt1.flac"), str(FIXTURES / "utt2.flac")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    save_model_folder(directory)
    return str(directory)


def test_subcommands_are_registered() -> None:
    args = build_parser().parse_args(["transcribe", "a.flac", "--model", "m", "--format", "srt", "--bf16"])
    assert (args.command, args.format, args.bf16, args.device, args.chunk_s) == (
        "transcribe",
        "srt",
        True,
        "auto",
        20.0,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["transcribe", "a.flac"])  # --model is required
    serve = build_parser().parse_args(["serve", "--model", "m", "--precision", "auto", "--calibration", "dev"])
    assert (serve.precision, serve.calibration) == ("auto", "dev")


def test_build_lm(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "lm.arpa"
    assert main(["build-lm", str(CORPUS), str(out), "--order", "3", "--prune", "0", "0", "1", "--quiet"]) == 0
    assert out.read_text().startswith("\\data\\\nngram 1=")
    assert "3-grams" in capsys.readouterr().out
    assert main(["build-lm", str(tmp_path / "missing.txt"), str(out), "--quiet"]) == 2
    assert "LM text corpus not found" in capsys.readouterr().err
    from hf_w2v2.decoding import arpa

    calls = iter(range(10**6))
    real = arpa._log10

    def ctrl_c_midway(p: float) -> float:  # Ctrl-C with part of the file written
        if next(calls) == 20:
            raise KeyboardInterrupt
        return real(p)

    monkeypatch.setattr(arpa, "_log10", ctrl_c_midway)
    assert main(["build-lm", str(CORPUS), str(tmp_path / "cut.arpa"), "--order", "3", "--quiet"]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.arpa"]  # no half LM (was: cut.arpa, cut short)


def test_transcribe_txt_to_stdout(model_dir: str, capsys) -> None:
    assert main(["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "\t" not in lines[0]
    assert main(["transcribe", UTT1, UTT2, "--model", model_dir, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [UTT1, UTT2]
    assert main(["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--bf16", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_no_length_grid_reaches_the_transcriber(model_dir: str, capsys, monkeypatch) -> None:
    from hf_w2v2.inference.transcribe import Transcriber

    seen = []
    real = Transcriber.from_pretrained

    def spy(*args, **kwargs):
        transcriber = real(*args, **kwargs)
        seen.append(transcriber.allow_length_grid)
        return transcriber

    monkeypatch.setattr(Transcriber, "from_pretrained", spy)
    assert main(["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet"]) == 0
    on_grid = capsys.readouterr().out
    assert main(["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet", "--no-length-grid"]) == 0
    assert capsys.readouterr().out == on_grid and seen == [True, False]


def test_bad_file_in_a_batch_is_reported_and_the_rest_transcribed(tmp_path, model_dir: str, capsys) -> None:
    corrupt = tmp_path / "broken.flac"
    corrupt.write_bytes(b"not audio at all")
    code = main(["transcribe", UTT1, str(corrupt), UTT2, "--model", model_dir, "--format", "json", "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["file"] for r in records] == [UTT1, str(corrupt), UTT2]
    assert records[1]["error"] and "broken.flac" in records[1]["error"] and "text" not in records[1]
    assert all(isinstance(r["text"], str) and r["error"] is None for r in (records[0], records[2]))
    assert "1 of 3 files could not be transcribed" in captured.err


def test_srt_files_for_a_folder(tmp_path, model_dir: str) -> None:
    audio_dir = tmp_path / "audio" / "sub"
    audio_dir.mkdir(parents=True)
    shutil.copy(UTT1, audio_dir / "one.flac")
    shutil.copy(UTT2, tmp_path / "audio" / "two.flac")
    out = tmp_path / "out"
    assert (
        main(
            [
                "transcribe",
                str(tmp_path / "audio"),
                "--model",
                model_dir,
                "--format",
                "srt",
                "--output-dir",
                str(out),
                "--chunk-s",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.srt")) == ["sub/one.srt", "two.srt"]


def test_bad_invocations(tmp_path, model_dir: str, capsys) -> None:
    assert main(["transcribe", UTT1, UTT2, "--model", model_dir, "--format", "srt", "--quiet"]) == 2
    assert "needs --output-dir" in capsys.readouterr().err
    assert main(["transcribe", UTT1, "--model", str(tmp_path / "none"), "--quiet"]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["transcribe", str(tmp_path / "nothing.flac"), "--model", model_dir, "--quiet"]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["transcribe", UTT1, "--model", model_dir, "--lm", str(tmp_path / "x.arpa"), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err


def test_srt_format() -> None:
    assert srt_timestamp(3725.5) == "01:02:05,500"
    words = [Span.from_frames(w, s, e, 0.02) for w, s, e in [("HELLO", 0, 20), ("WORLD", 25, 50), ("AGAIN", 200, 230)]]
    assert [[w.text for w in cue] for cue in group_words(words)] == [["HELLO", "WORLD"], ["AGAIN"]]  # pause > 1 s
    srt = to_srt(Transcription(text="HELLO WORLD AGAIN", words=words))
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,000\nHELLO WORLD\n\n2\n00:00:04,000 --> 00:00:04,600\nAGAIN\n")
    assert to_srt(Transcription(text="")) == ""


def test_same_name_different_extension_writes_two_outputs(tmp_path, model_dir: str) -> None:
    """Issue 23.1: ``a.flac`` and ``a.wav`` in one folder both went to ``OUT/a.txt`` (one transcript lost)."""
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copy(UTT1, audio / "a.flac")
    shutil.copy(FIXTURES.parent / "audio" / "tone_8k.wav", audio / "a.wav")
    shutil.copy(UTT2, audio / "b.flac")
    out = tmp_path / "out"
    assert main(["transcribe", str(audio), "--model", model_dir, "--output-dir", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.flac.txt", "a.wav.txt", "b.txt"]


def test_output_paths_are_unique_or_refused() -> None:
    from hf_w2v2.cli import output_paths

    targets = output_paths(["/d/a.flac", "/d/a.wav", "/d/s/a.wav"], "/o", "txt")
    assert targets == {"/d/a.flac": "/o/a.flac.txt", "/d/a.wav": "/o/a.wav.txt", "/d/s/a.wav": "/o/s/a.txt"}
    with pytest.raises(ValueError, match="would write the same output"):
        output_paths(["/d/a.flac.wav", "/d/a.flac", "/d/a.wav"], "/o", "txt")


def test_quiet_silences_the_loading_bar_and_kenlm(tmp_path, model_dir: str, capfd) -> None:
    """capfd: KenLM writes its "Reading FILE" ruler to file descriptor 2, past sys.stderr."""
    pytest.importorskip("kenlm")
    pytest.importorskip("pyctcdecode")
    lm = tmp_path / "lm.arpa"
    assert main(["build-lm", str(CORPUS), str(lm), "--order", "2", "--quiet"]) == 0
    capfd.readouterr()
    assert main(["transcribe", UTT1, "--model", model_dir, "--lm", str(lm), "--quiet"]) == 0
    out, err = capfd.readouterr()
    assert out.strip() and "Loading weights" not in err and "Reading" not in err and "----5---10" not in err, err
    assert main(["transcribe", UTT1, "--model", model_dir, "--lm", str(lm)]) == 0
    err = capfd.readouterr().err
    assert "Loading weights" in err and "----5---10" in err  # what --quiet took away


def test_transcribe_on_a_classifier_folder_says_it_is_a_classifier(capsys) -> None:
    """The shipped digits classifier lacks tokenizer files: "incomplete" sent its user after them."""
    classifier = str(ROOT / "models/w2v2-small-fsdd-digits")
    assert main(["transcribe", UTT1, "--model", classifier, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "audio classifier" in err and "Wav2Vec2ForSequenceClassification" in err and "incomplete" not in err
    assert f"hf-w2v2 classify {classifier} AUDIO" in err


@pytest.mark.parametrize(
    "removed",
    ["vocab.json", "processor_config.json", "tokenizer_config.json", "config.json", "model.safetensors", "ALL"],
)
def test_broken_model_folder_is_one_clear_error(tmp_path, model_dir: str, capsys, removed: str) -> None:
    """Issue 23.9: each of these used to end in a traceback, a TypeError on None or a size mismatch."""
    broken = tmp_path / "model"
    if removed == "ALL":
        broken.mkdir()
    else:
        shutil.copytree(model_dir, broken)
        (broken / removed).unlink()
    assert main(["transcribe", UTT1, "--model", str(broken), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is incomplete: missing" in err and "save_pretrained" in err
    # the last name of each "missing" item, e.g. "processor_config.json or preprocessor_config.json (...)"
    listed = re.findall(r"([a-z_]+\.(?:json|safetensors|bin)) \(", err.split(". A complete")[0])
    labels = {
        "config.json": "config.json",
        "tokenizer_config.json": "tokenizer_config.json",
        "vocab.json": "vocab.json",
        "processor_config.json": "preprocessor_config.json",
        "model.safetensors": "pytorch_model.bin",
    }
    expected = list(labels.values()) if removed == "ALL" else [labels[removed]]
    assert sorted(listed) == sorted(expected)


def test_transcribe_auto_chooses_on_the_calibration_folder(model_dir: str, capsys, monkeypatch, tmp_path) -> None:
    """``transcribe --precision auto --calibration DIR``: the path is chosen on the folder's recordings,
    guarded against their transcripts, before the first file; the choice is named on stderr."""
    import importlib

    from hf_w2v2.inference import machine
    from hf_w2v2.inference.transcribe import Transcriber

    optimize_module = importlib.import_module("hf_w2v2.inference.optimize")
    monkeypatch.setattr(optimize_module, "CPU_PATHS", ("fp32", "fp32-matmul"))  # two quick ones
    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    folder = str(ROOT / "tests" / "fixtures" / "finetune" / "dev")
    made = []
    real = Transcriber.from_pretrained

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(Transcriber, "from_pretrained", spy)
    args = ["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet", "--calibration", folder]
    assert main(args) == 2 and "--calibration is for --precision auto, not fp32" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "missing"), "--precision", "auto"]) == 2
    assert "calibration folder not found" in capsys.readouterr().err and not made  # nothing loaded
    assert main([*args, "--precision", "auto"]) == 0
    out, err = capsys.readouterr()
    fast = made[0].model
    assert len(out.splitlines()) == 1 and auto_line(fast) in err
    assert "building and guarding" not in err  # --quiet: no bar while the paths are measured
    assert fast.references is not None and len(fast.references) == len(fast.calibration) == 6  # the folder's
    assert main(["transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet", "--precision", "auto"]) == 0
    fast = made[-1].model  # chosen on the first file, against fp32's tokens, and named at the end
    assert fast.references is None and auto_line(fast) in capsys.readouterr().err


def test_auto_chooses_before_the_transcribing_bar_starts(model_dir: str, capsys, monkeypatch, tmp_path) -> None:
    """Without --calibration the path is chosen on the first readable files before the "transcribing" bar
    starts (which otherwise counted the measurement in its rate and time left); an unreadable first file
    is passed by and reported."""
    import importlib

    from hf_w2v2.inference import machine

    optimize_module = importlib.import_module("hf_w2v2.inference.optimize")
    monkeypatch.setattr(optimize_module, "CPU_PATHS", ("fp32", "fp32-matmul"))
    monkeypatch.setenv(machine.CACHE_ENV, str(tmp_path / "cache"))
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    args = ["transcribe", str(broken), UTT1, UTT2, "--model", model_dir, "--device", "cpu", "--precision", "auto"]
    assert main(args) == 1  # one file could not be transcribed
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "broken.flac" in err
    assert "precision auto: " in err
    assert err.index("inference paths: building and guarding") < err.index("transcribing")


def auto_line(fast) -> str:
    """The start of the CLI's line naming ``auto``'s choice: the path, with its speed-up unless it is fp32."""
    speedup = fast.choice.speedup(fast.chosen)
    named = fast.chosen if fast.chosen == "fp32" else f"{fast.chosen} ({speedup:.2f}x fp32)"
    return f"precision auto: {named} for new input lengths"


def test_the_auto_line_gives_speed_ups_and_the_paths_the_guard_rejected(capsys) -> None:
    from types import SimpleNamespace

    from hf_w2v2.cli import report_auto_choice
    from hf_w2v2.inference.measurement import Choice, PathResult

    results = [
        PathResult("fp32", seconds=1.0, seconds_recurring=0.9, cer_change=None),
        PathResult("int8", seconds=0.5, seconds_recurring=0.45, cer_change=0.001),
        PathResult("onnx", seconds=0.4, seconds_recurring=0.3, cer_change=0.0),
        PathResult("onnx-int8", seconds=0.2, seconds_recurring=0.2, cer_change=0.02, error="accuracy guard: ..."),
        PathResult("pt2e-int8-static", error="ImportError: needs torchao"),
    ]
    choice = Choice(["int8", "onnx", "fp32"], results, recurring=["onnx", "fp32"])
    report_auto_choice(SimpleNamespace(model=SimpleNamespace(choice=choice)))  # type: ignore[arg-type]
    assert capsys.readouterr().err == (
        "precision auto: int8 (2.00x fp32) for new input lengths, onnx (3.00x fp32) for recurring ones;"
        " 1 of 5 paths rejected by the accuracy guard\n"
    )
    report_auto_choice(SimpleNamespace(model=SimpleNamespace(choice=None)))  # type: ignore[arg-type]
    report_auto_choice(SimpleNamespace(model=SimpleNamespace()))  # type: ignore[arg-type]  # not auto
    assert capsys.readouterr().err == ""


def test_a_command_prints_no_import_notices(model_dir: str) -> None:
    """Nothing but the transcript: no notices of optional libraries imported along the way (torchao's
    "Failed to load" and torch's pytree deprecation, when torchao is installed)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "hf_w2v2.cli", "transcribe", UTT1, "--model", model_dir, "--device", "cpu", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1
    assert "Failed to load" not in done.stderr and "Enum subclass" not in done.stderr, done.stderr


def test_ctrl_c_and_a_closed_stdout_end_a_command_without_a_traceback(model_dir: str, monkeypatch, capsys) -> None:
    """Ctrl-C: ``interrupted`` and 130 (was a traceback through whatever ran, e.g. NNCF's graph builder); stdout's
    reader gone (``| head``): nothing on stderr and 141 (was ``error: [Errno 32] Broken pipe`` and 2)."""
    import subprocess
    import sys

    from hf_w2v2.inference.transcribe import Transcriber

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Transcriber, "from_pretrained", interrupted)
    assert main(["transcribe", UTT1, "--model", model_dir]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    command = [sys.executable, "-m", "hf_w2v2.cli", "transcribe", UTT1, UTT2, "--model", model_dir, "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader leaves before the first transcript
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141 and stderr == "", stderr
