"""What a folder needs before it can transcribe, checked before anything is loaded.

A CTC model folder holds the model (``config.json`` and the weights) and its processor
(the feature extractor's and the tokenizer's settings, and the vocabulary). Loading a
folder that lacks one of them fails deep inside transformers with a traceback, a
``TypeError ... NoneType`` or, worse, a tokenizer built from defaults whose size does not
match the head ("30 vs 34 classes"). :func:`check_model_folder` names every missing file,
what it is, and how a complete folder is made.
"""

from __future__ import annotations

import json
import os

WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")  # transformers 5 / 4 name
REQUIRED = {
    "config.json": "the model's architecture",
    "tokenizer_config.json": "the tokenizer's settings",
    "vocab.json": "the CTC vocabulary (row i of the head is token i)",
}
HOW_TO_MAKE = (
    "A complete folder is what fine-tuning writes to its --output_dir, or "
    "model.save_pretrained(DIR) together with processor.save_pretrained(DIR). A checkpoint-N folder "
    "holds the weights only: copy vocab.json, tokenizer_config.json and processor_config.json into it "
    "from the run's output folder."
)


# Heads other than CTC that hf_w2v2 saves (config.json "architectures"): what the folder is, what reads it.
OTHER_HEADS = {
    "Wav2Vec2ForSequenceClassification": ("an audio classifier (one label per clip)", "hf-w2v2 classify {path} AUDIO"),
    "Wav2Vec2ForAudioFrameClassification": (
        "a frame classifier (one label per 20 ms frame)",
        "hf-w2v2 classify {path} AUDIO",
    ),
    "Wav2Vec2ForXVector": (
        "a speaker-embedding (x-vector) model",
        "hf-w2v2 verify {path} A B, or hf-w2v2 embed {path} AUDIO --output embeddings.npz",
    ),
    "Wav2Vec2ForPreTraining": (
        "a pre-trained encoder with no CTC head",
        "fine-tune it first: python examples/finetune_ctc.py --model_name_or_path {path} ...",
    ),
}


class NotATranscriberError(ValueError):
    """The folder holds a model with another head (a classifier, say): it cannot transcribe."""

    def __init__(self, path: str, architecture: str) -> None:
        what, use = OTHER_HEADS[architecture]
        self.architecture = architecture
        super().__init__(
            f"{path} holds {what} ({architecture}), not a CTC speech recogniser: it cannot transcribe. "
            f"Use {use.format(path=path)}"
        )


def saved_architecture(path: str | os.PathLike) -> str | None:
    """The head class ``config.json`` names (``architectures[0]``), or None when it names none or is unreadable."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            names = json.load(handle).get("architectures") or [None]
    except (OSError, ValueError, AttributeError):
        return None  # missing or damaged: missing_model_files and transformers say so
    return names[0] if isinstance(names[0], str) else None


class IncompleteModelFolderError(FileNotFoundError):
    """A model folder lacks files; ``missing`` lists them (with alternatives joined by ' or ')."""

    def __init__(self, path: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"model folder {path} is incomplete: missing {'; '.join(missing)}. {HOW_TO_MAKE}")


def missing_model_files(path: str | os.PathLike) -> list[str]:
    """One line per missing part of a CTC model folder (empty when complete)."""
    names = set(os.listdir(path))
    missing = [f"{name} ({what})" for name, what in REQUIRED.items() if name not in names]
    if not names & set(PROCESSOR_FILES):
        missing.append(f"{' or '.join(PROCESSOR_FILES)} (the feature extractor's settings)")
    if not names & set(WEIGHT_FILES):
        missing.append(f"{' or '.join(WEIGHT_FILES[:2])} (the weights)")
    empty = sorted(
        n for n in names if os.path.isfile(os.path.join(path, n)) and os.path.getsize(os.path.join(path, n)) == 0
    )
    missing += [f"{name} is empty" for name in empty]
    return missing


def check_weights_folder(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` naming what ``path`` lacks to load a model alone (no processor):
    ``config.json`` and a weights file, none of them empty (what ``export`` and the trainers read)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model folder not found: {path}")
    names = set(os.listdir(path))
    missing = [] if "config.json" in names else [f"config.json ({REQUIRED['config.json']})"]
    if not names & set(WEIGHT_FILES):
        missing.append(f"{' or '.join(WEIGHT_FILES[:2])} (the weights)")
    for name in sorted(names & ({"config.json"} | set(WEIGHT_FILES))):
        if os.path.isfile(os.path.join(path, name)) and os.path.getsize(os.path.join(path, name)) == 0:
            missing.append(f"{name} is empty")
    if missing:
        raise IncompleteModelFolderError(path, missing)


def check_model_folder(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` (:class:`IncompleteModelFolderError`) naming what ``path`` lacks, or
    :class:`NotATranscriberError` (a ``ValueError``) when it holds a classifier or another non-CTC model
    (which also lacks the tokenizer files: "incomplete" would send its user after the wrong files)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"model folder not found: {path}")
    architecture = saved_architecture(path)
    if architecture in OTHER_HEADS:
        raise NotATranscriberError(path, architecture)
    missing = missing_model_files(path)
    if missing:
        raise IncompleteModelFolderError(path, missing)
