"""CTC forced alignment: Viterbi against brute force, known word times, output formats, the CLI."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from hf_w2v2.cli import main
from hf_w2v2.decoding.align import align_logits, ctc_viterbi, render_alignment, token_spans, tokenize_transcript
from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.inference.align import align_array
from hf_w2v2.inference.transcribe import Transcriber

SHIPPED = Path(__file__).parent.parent / "models" / "w2v2-small-synth-en"
DEV = Path(__file__).parent / "fixtures" / "finetune" / "dev"
ALPHABET = CTCAlphabet.from_vocab({"[PAD]": 0, "[UNK]": 1, "|": 2, "A": 3, "B": 4, "C": 5})


def collapse(path: list[int]) -> list[int]:
    """CTC collapse of a state path given as target labels (-1 blank): merge repeats, drop blanks."""
    out, prev = [], None
    for label in path:
        if label != prev and label != -1:
            out.append(label)
        prev = label
    return out


def brute_force(log_probs: np.ndarray, targets: list[int], blank: int = 0) -> float:
    """Best score over every frame labelling that collapses to ``targets``."""
    best = -np.inf
    for labels in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
        as_targets = [-1 if v == blank else v for v in labels]
        if collapse(as_targets) == list(targets):
            best = max(best, float(sum(log_probs[t, v] for t, v in enumerate(labels))))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_viterbi_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    frames, vocab = int(rng.integers(2, 6)), 3
    targets = [int(v) for v in rng.integers(1, vocab, size=int(rng.integers(1, 3)))]
    log_probs = np.log(rng.dirichlet(np.ones(vocab), size=frames))
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if len(targets) + repeats > frames:
        with pytest.raises(ValueError, match="cannot be aligned"):
            ctc_viterbi(log_probs, targets)
        return
    path, score = ctc_viterbi(log_probs, targets)
    assert score == pytest.approx(brute_force(log_probs, targets))
    labels = [-1 if u < 0 else targets[u] for u in path]
    # The path is a valid alignment with the score it claims.
    assert collapse(labels) == targets
    assert sum(log_probs[t, 0 if u < 0 else targets[u]] for t, u in enumerate(path)) == pytest.approx(score)


def test_repeated_tokens_need_a_blank_between():
    log_probs = np.log(np.full((3, 3), 1 / 3))
    path, _ = ctc_viterbi(log_probs, [1, 1])
    assert path == [0, -1, 1]
    with pytest.raises(ValueError, match="too short"):
        ctc_viterbi(log_probs[:2], [1, 1])


def synthetic_logits(layout: list[tuple[str, int, int]], frames: int) -> torch.Tensor:
    """Peaked logits: label ``text`` on frames ``[start, end)``, blank elsewhere."""
    logits = torch.full((frames, len(ALPHABET)), -5.0)
    logits[:, 0] = 5.0
    index = {label: i for i, label in enumerate(ALPHABET.labels)}
    for text, start, end in layout:
        logits[start:end, 0] = -5.0
        logits[start:end, index[text]] = 5.0
    return logits


def test_known_times_from_synthetic_logits():
    layout = [("A", 10, 12), ("B", 14, 15), (" ", 20, 22), ("C", 40, 43), ("C", 45, 46)]
    alignment = align_logits(synthetic_logits(layout, 60), "ab cc", ALPHABET, seconds_per_frame=0.02)
    assert [(w.text, w.start_frame, w.end_frame) for w in alignment.words] == [("ab", 10, 15), ("cc", 40, 46)]
    assert [(c.text, c.start, c.end) for c in alignment.chars] == [
        ("a", 0.2, 0.24),
        ("b", 0.28, 0.3),
        ("c", 0.8, 0.86),
        ("c", 0.9, 0.92),
    ]
    assert alignment.score < 0


def test_tokenize_transcript_cases_unknown_and_errors():
    tokens, words = tokenize_transcript("  ab  c ", ALPHABET)
    assert (tokens, words) == ([3, 4, 2, 5], ["ab", "c"])
    assert tokenize_transcript("ax", ALPHABET)[0] == [3, 1]  # x -> [UNK]
    no_unk = CTCAlphabet.from_vocab({"[PAD]": 0, "|": 1, "A": 2}, unk_token=None)
    with pytest.raises(ValueError, match="'x'"):
        tokenize_transcript("ax", no_unk)
    with pytest.raises(ValueError, match="empty"):
        tokenize_transcript("   ", ALPHABET)


def test_formats():
    alignment = align_logits(synthetic_logits([("A", 2, 3), ("B", 6, 7)], 10), "a b", ALPHABET)
    record = json.loads(render_alignment(alignment, "json", path="x.wav"))
    assert [(w["text"], w["start"], w["end"]) for w in record["words"]] == [("a", 0.04, 0.06), ("b", 0.12, 0.14)]
    tsv = render_alignment(alignment, "tsv").splitlines()
    assert tsv[0] == "level\tstart\tend\ttext" and tsv[1] == "word\t0.040\t0.060\ta"
    assert "00:00:00,120 --> 00:00:00,140\nb" in render_alignment(alignment, "srt")
    grid = render_alignment(alignment, "textgrid", duration=0.2)
    assert 'name = "words"' in grid and "intervals: size = 5" in grid and "xmax = 0.200" in grid
    with pytest.raises(ValueError, match="unknown alignment format"):
        render_alignment(alignment, "csv")


def test_token_spans():
    assert token_spans([-1, 0, 0, -1, 1, -1], 2) == [(1, 3), (4, 5)]


@pytest.fixture(scope="module")
def transcriber():
    return Transcriber.from_pretrained(SHIPPED, use_lm=False, device="cpu")


def test_shipped_model_finds_words_around_known_silences(transcriber):
    """Two dev clips joined by 1.0 s of silence: the words of each stay inside its clip."""
    with open(DEV / "metadata.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:2]
    clips = [sf.read(DEV / r["file_name"], dtype="float32")[0] for r in rows]
    gap = 1.0
    audio = np.concatenate([clips[0], np.zeros(int(16_000 * gap), np.float32), clips[1]])
    alignment = align_array(transcriber, audio, rows[0]["text"] + " " + rows[1]["text"])
    first_end = len(clips[0]) / 16_000
    n_first = len(rows[0]["text"].split())
    assert alignment.words[n_first - 1].end <= first_end + 0.06
    assert alignment.words[n_first].start >= first_end + gap - 0.06
    assert alignment.words[-1].end <= len(audio) / 16_000
    starts = [w.start for w in alignment.words]
    assert starts == sorted(starts)


def test_align_cli(tmp_path, transcriber, capsys):
    with open(DEV / "metadata.csv", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    transcript = tmp_path / "t.txt"
    transcript.write_text(row["text"].lower() + "\n", encoding="utf-8")
    out = tmp_path / "a.TextGrid"
    code = main(
        [
            "align",
            str(SHIPPED),
            str(DEV / row["file_name"]),
            str(transcript),
            "--format",
            "textgrid",
            "--output",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert out.read_text().count('text = "') >= len(row["text"].split())
    assert main(["align", str(SHIPPED), str(DEV / row["file_name"]), row["text"]]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [w["text"] for w in record["words"]] == row["text"].split()
    assert main(["align", str(SHIPPED), str(tmp_path / "missing.wav"), "A"]) == 2
