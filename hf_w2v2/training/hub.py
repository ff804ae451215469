"""Push the finished model folder to the Hugging Face Hub (``--push_to_hub``).

The Trainer's own push runs at every save and needs the Hub at start-up; here the run
finishes offline-safe and the final folder (weights, config, processor, card, metrics,
curves, predictions; not the ``checkpoint-*`` folders) is uploaded once, with
``huggingface_hub.HfApi``.
"""

from __future__ import annotations

import os
from pathlib import Path

UPLOAD_IGNORE = (
    "checkpoint-*",
    "checkpoint-*/**",
    "runs/**",
    "*.pt",
    "*.pth",
    "training_args.bin",
    ".hf_w2v2_run.lock",  # training/run_lock.py's LOCK_FILE
)


def default_repo_id(output_dir: str | os.PathLike, hub_model_id: str | None) -> str:
    """``hub_model_id``, else the output folder's name."""
    return hub_model_id or Path(output_dir).resolve().name


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "hf_w2v2 CTC fine-tuning",
) -> str:
    """Create ``repo_id`` if needed and upload ``folder``; returns the commit URL.

    Raises:
        ValueError: ``folder`` has no weights (nothing worth uploading).
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not any(folder.glob("*.safetensors")):
        raise ValueError(f"{folder} holds no *.safetensors weights; train (or save) the model before pushing")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=os.fspath(folder),
        commit_message=commit_message,
        ignore_patterns=list(UPLOAD_IGNORE),
        revision=revision,
        repo_type="model",
    )
    return str(getattr(commit, "commit_url", commit))
