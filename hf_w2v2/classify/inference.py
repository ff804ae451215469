"""A trained classifier or speaker-embedding model applied to audio files or decoded clips.

Shape legend: B batch, T samples, E embedding dim, L labels.

Used after training (evaluation of x-vectors) and by ``hf-w2v2 classify / verify / embed``.
Clips are run in batches of similar length with an attention mask (layer-norm encoders) or one
by one (group-norm encoders, which were pre-trained without padding).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio, normalize_waveform
from hf_w2v2.data.collator import DataCollatorCTCWithPadding, pad_sequences
from hf_w2v2.data.paths import display_path
from hf_w2v2.data.processor import uses_attention_mask
from hf_w2v2.inference.batching import check_length
from hf_w2v2.inference.chunked import pad_to_grid
from hf_w2v2.models.lengths import hop_length, receptive_field

VERIFICATION_FILE = "verification.json"
"""Stored next to an x-vector model: the EER threshold and the scores it was measured with."""


def min_samples_for(config, task: str) -> int:
    """Fewest samples a clip needs: the conv receptive field (+ the x-vector TDNN's, 2 frames for a std)."""
    field = receptive_field(config.conv_kernel, config.conv_stride)
    if task != "xvector":
        return field
    hop = int(np.prod(config.conv_stride))
    spans = sum((k - 1) * d for k, d in zip(config.tdnn_kernel, config.tdnn_dilation))
    return field + (spans + 1) * hop


@torch.no_grad()
def run_batches(
    model: torch.nn.Module,
    clips: Sequence[np.ndarray],
    batch_size: int = 16,
    output: str = "logits",
    show_progress: bool = False,
    length_grid: bool = True,
) -> torch.Tensor:
    """``output`` ("logits" (N, L) or "embeddings" (N, E)) of ``model`` for normalised clips, in input order.

    ``length_grid``: masked batches (layer-norm encoders) on the CPU are padded on to the length grid
    (:func:`~hf_w2v2.inference.chunked.pad_to_grid`), so that oneDNN meets a few input lengths, not one
    per batch; the mask keeps the padding out of every frame and of the pooling."""
    model.eval()
    device = next(model.parameters()).device
    config: Any = model.config  # a wav2vec 2.0 config
    masked = uses_attention_mask(config)
    size = batch_size if masked else 1
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))  # similar lengths share a batch
    results: list[torch.Tensor | None] = [None] * len(clips)
    for start in tqdm(range(0, len(order), size), desc=output, disable=not show_progress):
        index = order[start : start + size]
        values, lengths = pad_sequences([clips[i] for i in index], 0.0, None, np.dtype(np.float32))  # (B, T)
        mask = DataCollatorCTCWithPadding.attention_mask(lengths.numpy(), values.shape[1]) if masked else None
        if masked and length_grid and device.type == "cpu":
            values, mask = pad_to_grid(values, mask, hop_length(config.conv_stride))  # (B, T) -> (B, T on the grid)
        out = model(values.to(device), attention_mask=None if mask is None else mask.to(device))
        rows = getattr(out, output).float().cpu()
        for k, i in enumerate(index):
            results[i] = rows[k]
    return torch.stack([r for r in results if r is not None]) if clips else torch.empty(0)


def load_clip(path: str, min_samples: int, config=None) -> np.ndarray:
    """A file as a normalised 16 kHz clip, zero-padded to ``min_samples`` (what the head needs).

    Raises:
        ValueError: the file cannot be decoded or, with the model's ``config``, it is shorter than one
            encoder frame (25 ms), which transcription refuses too
            (:func:`~hf_w2v2.inference.batching.check_length`): zero padding would make up most of what
            the model hears. The message names the file.
    """
    audio = load_audio(path, TARGET_SAMPLING_RATE)
    if config is not None:
        try:
            check_length(audio, config)
        except ValueError as err:
            ms = audio.shape[0] / TARGET_SAMPLING_RATE * 1000
            raise ValueError(f"{display_path(path)} ({ms:.0f} ms): {err}") from err
    audio = normalize_waveform(audio)
    return np.pad(audio, (0, max(0, min_samples - audio.shape[0])))


@dataclass(frozen=True)
class Prediction:
    path: str
    labels: list[tuple[str, float]]  # (name, probability), best first; empty when ``error`` is set
    error: str | None = None  # why the file got no labels (unreadable, too short)

    def to_json(self) -> str:
        if self.error is not None:
            return json.dumps({"file": display_path(self.path), "error": self.error})
        labels = [{"label": n, "score": round(s, 6)} for n, s in self.labels]
        return json.dumps({"file": display_path(self.path), "labels": labels})


def load_model(model_dir: str, device: str = "cpu"):
    """The saved model of ``model_dir`` with its head class read from ``config.architectures``."""
    from hf_w2v2.models.classification import Wav2Vec2ForAudioFrameClassification, Wav2Vec2ForSequenceClassification
    from hf_w2v2.models.configuration import Wav2Vec2Config
    from hf_w2v2.models.xvector import Wav2Vec2ForXVector

    if not os.path.isdir(model_dir):
        raise ValueError(f"model folder not found: {model_dir}")
    classes: dict[str, Any] = {
        c.__name__: c
        for c in (Wav2Vec2ForSequenceClassification, Wav2Vec2ForXVector, Wav2Vec2ForAudioFrameClassification)
    }
    config = Wav2Vec2Config.from_pretrained(model_dir)
    names = [a for a in (config.architectures or []) if a in classes]
    if not names:
        raise ValueError(f"{model_dir} holds a {config.architectures} model, not a classifier or x-vector model")
    from hf_w2v2.models.integrity import check_finite_weights

    model = classes[names[0]].from_pretrained(model_dir)
    check_finite_weights(model, model_dir)
    return model.to(device).eval()


def classify_files(model, paths: Sequence[str], top_k: int = 3, batch_size: int = 16) -> list[Prediction]:
    """Top-``k`` labels with softmax probabilities per file, in order; a file that cannot be read or is
    too short (:func:`load_clip`) gets a :class:`Prediction` with its ``error`` instead of labels."""
    clips: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    for index, path in enumerate(paths):
        try:
            clips[index] = load_clip(path, min_samples_for(model.config, "sequence"), model.config)
        except ValueError as err:  # AudioLoadError is one
            errors[index] = str(err)
    order = sorted(clips)
    probs = torch.softmax(run_batches(model, [clips[i] for i in order], batch_size), dim=-1)  # (N, L)
    names = model.config.id2label
    found: dict[int, Prediction] = {}
    if order:
        scores, ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
        for i, srow, irow in zip(order, scores, ids):
            found[i] = Prediction(paths[i], [(str(names[int(k)]), float(s)) for s, k in zip(srow, irow)])
    return [found.get(i) or Prediction(p, [], error=errors[i]) for i, p in enumerate(paths)]


def embed_files(model, paths: Sequence[str], batch_size: int = 16, show_progress: bool = False) -> torch.Tensor:
    """(N, E) x-vector embeddings of ``paths``; ``model`` must be an x-vector model (``verify``/``embed``).
    A file too short or unreadable is an error naming it."""
    from hf_w2v2.models.xvector import Wav2Vec2ForXVector

    if not isinstance(model, Wav2Vec2ForXVector):
        source = getattr(model.config, "_name_or_path", "") or "the model"
        raise ValueError(
            f"{source} is a {type(model).__name__}, which gives class scores, not speaker embeddings: "
            "verify and embed need an x-vector model (Wav2Vec2ForXVector), trained with "
            "hf-w2v2 classify's job --task xvector; use hf-w2v2 classify for this model"
        )
    clips = [load_clip(p, min_samples_for(model.config, "xvector"), model.config) for p in paths]
    return run_batches(model, clips, batch_size, output="embeddings", show_progress=show_progress)


def read_threshold(model_dir: str) -> float | None:
    """The EER threshold stored by training (``verification.json``), if any."""
    path = Path(model_dir) / VERIFICATION_FILE
    if not path.is_file():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["threshold"])


def score_trials(model, trials_path: str, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(cosine scores, target flags) of the trials in ``trials_path`` (a missing file is an error naming it)."""
    from hf_w2v2.classify.verification import cosine_scores, read_trials

    trials = read_trials(trials_path)
    files = sorted({name for t in trials for name in (t.a, t.b)})
    embeddings = embed_files(model, files, batch_size, show_progress=True)
    scores = cosine_scores(embeddings, {name: i for i, name in enumerate(files)}, trials)
    return scores, np.array([t.target for t in trials])
