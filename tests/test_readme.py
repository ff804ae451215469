"""The README's code works as written: every ```python block runs, and the first screen's commands parse.

Each Python block runs in a fresh interpreter whose working directory is a temporary folder holding links
to the repository's `models/`, `tests/` and `examples/`, so the blocks read the shipped model and local
clips by their README paths and anything they write (``runs/...``) lands in the temporary folder. The
Hugging Face libraries are put offline: a block that needs the network fails here. The shell block of the
first screen is checked command by command: each script or ``hf-w2v2`` subcommand answers ``--help``,
recipes parse, and every path it names exists (except outputs under ``runs/``, which the main job writes).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_together

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.S | re.M)
LINKED = ("models", "tests", "examples")  # what the blocks may read, by their README paths
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def first_screen() -> str:
    """The README up to its first ``## `` heading (what a new user sees first)."""
    return TEXT.split("\n## ", 1)[0]


def shell_commands(block: str) -> list[list[str]]:
    """Commands of a bash block as argv lists: comments dropped, ``VAR=value`` prefixes removed."""
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def python_env() -> dict[str, str]:
    """Offline, one thread, this checkout's hf_w2v2 first."""
    return {
        **os.environ,
        **OFFLINE,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def test_readme_has_python_blocks_and_a_first_screen_with_the_essentials() -> None:
    assert len(PYTHON_BLOCKS) >= 3
    screen = first_screen()
    assert len(screen.splitlines()) <= 45, "the first screen grew past ~40 lines"
    essentials = ("pip install", "examples/configs/finetune_digits.yaml", "hf-w2v2 transcribe", "pytest", "```python")
    essentials += ("Python 3.1", "python3 -m venv", "no C++ compiler", "Install: ")  # prerequisites and the time
    for needed in essentials:
        assert needed in screen, f"the README's first screen lacks {needed!r}"


@pytest.fixture(scope="module")
def block_runs(tmp_path_factory: pytest.TempPathFactory) -> list[subprocess.CompletedProcess]:
    """Every block in its own fresh interpreter and folder, all started together (conftest.run_together):
    each imports torch and transformers on one thread, so on 2 cores two run at a time instead of one."""
    folders = [tmp_path_factory.mktemp(f"block{index}") for index in range(len(PYTHON_BLOCKS))]
    for folder in folders:
        for name in LINKED:
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    commands = [[sys.executable, "-c", code] for code in PYTHON_BLOCKS]
    return run_together(commands, python_env(), list(folders), timeout=300)


@pytest.mark.slow  # a fresh interpreter per block (torch + transformers imports): ~10 s each, more on a busy machine
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index: int, block_runs: list[subprocess.CompletedProcess]) -> None:
    code = PYTHON_BLOCKS[index]
    assert "../shared" not in code, "README snippets must run on files in the repository"
    result = block_runs[index]
    assert result.returncode == 0, (
        f"README python block {index} failed:\n{code}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


def first_screen_commands() -> list[list[str]]:
    blocks = re.findall(r"^```bash\n(.*?)^```", first_screen(), flags=re.S | re.M)
    assert blocks, "no shell block on the README's first screen"
    return [words for block in blocks for words in shell_commands(block)]


def test_first_screen_paths_exist() -> None:
    for words in first_screen_commands():
        for word in words:
            if "/" in word and not word.startswith(("-", "runs/", "http", ".venv/")):
                assert (ROOT / word).exists(), f"README first screen names {word}, which does not exist"
        if words[:2] == ["pip", "install"]:
            for option, value in zip(words, words[1:]):
                if option == "-r":
                    assert (ROOT / value).is_file()
            assert (ROOT / "pyproject.toml").is_file()


def help_command(words: list[str]) -> list[str] | None:
    """The ``--help`` form of a first-screen command, or None when there is nothing to ask (pip, pytest)."""
    if words[0] == "python" and len(words) > 1 and words[1].endswith(".py"):
        return [sys.executable, str(ROOT / words[1]), "--help"]
    if words[0] == "hf-w2v2":
        return [sys.executable, "-m", "hf_w2v2.cli", *words[1:2], "--help"]
    return None


@pytest.mark.slow  # `finetune_ctc.py --help` imports transformers in a fresh interpreter
@pytest.mark.parametrize("words", first_screen_commands(), ids=lambda w: " ".join(w[:3]))
def test_first_screen_command_parses(words: list[str]) -> None:
    command = help_command(words)
    if command is None:
        assert words[0] in ("pip", "python", "python3"), f"unchecked command on the first screen: {words}"
        return
    env = {**os.environ, **OFFLINE, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(words)} --help failed:\n{result.stderr[-3000:]}"
    assert "usage:" in result.stdout.lower()
    recipes = [w for w in words if w.endswith((".yaml", ".json")) and "configs/" in w]
    if "finetune_ctc.py" in words[1]:
        from hf_w2v2.finetune.arguments import parse_finetune_args

        for recipe in recipes:
            model, data, _, training = parse_finetune_args([str(ROOT / recipe)])
            for path in (model.model_name_or_path, data.train_data, data.eval_data):
                assert path is not None and (ROOT / path).exists(), f"{recipe} names {path}, which does not exist"
            assert not any(str(p).startswith("../") for p in (data.train_data, data.eval_data)), recipe


@pytest.mark.slow
def test_main_job_runs_and_reports_before_and_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's main job, cut to two steps on a few clips: it scores every split before and after training,
    and the card shows both while its Hub metadata keeps only this model's own scores."""
    pytest.importorskip("jiwer")
    from hf_w2v2.finetune import parse_finetune_args, run_finetuning

    monkeypatch.chdir(ROOT)  # the recipe's paths are relative to the repository root, as in the README
    argv = ["examples/configs/finetune_digits.yaml", "--output_dir", str(tmp_path / "digits"), "--max_steps", "2"]
    argv += ["--max_train_samples", "16", "--max_eval_samples", "6", "--eval_steps", "2", "--logging_steps", "1"]
    argv += ["--disable_tqdm", "True", "--use_cpu", "True"]
    result = run_finetuning(*parse_finetune_args(argv))
    metrics = result.metrics
    for prefix in ("eval", "test_unseen-speaker"):
        for metric in ("wer", "cer"):
            assert metrics[f"{prefix}_before_{metric}"] >= 0.0 and metrics[f"{prefix}_{metric}"] >= 0.0
    # The shipped model has never heard these speakers: it gets most words wrong before training.
    assert metrics["eval_before_wer"] > 0.5
    out = Path(result.output_dir)
    # The evaluation during training (step 2) and the final one score the same weights: the same numbers,
    # so the before-training evaluations of other splits did not leave their metrics on the Trainer.
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    during = [entry for entry in history if "eval_wer" in entry and entry.get("step") == 2]
    assert during and during[-1]["eval_wer"] == pytest.approx(metrics["eval_wer"])
    assert during[-1]["eval_cer"] == pytest.approx(metrics["eval_cer"])
    saved = json.loads((out / "all_results.json").read_text())
    assert saved["eval_before_wer"] == metrics["eval_before_wer"]
    assert (out / "predictions_eval_before.tsv").is_file() and (out / "predictions_eval.tsv").is_file()
    card = (out / "README.md").read_text()
    front_matter, body = card.split("\n---\n", 1)
    assert "eval (before training)" in body and "unseen-speaker (before training)" in body
    assert front_matter.count("type: wer") == 2, "before-training scores must stay out of the Hub metadata"
    assert f"{metrics['eval_before_wer']:.3f}" in body
