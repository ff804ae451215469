"""The data side of a classification run: the training and evaluation clips decoded, with their class names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import TrainingArguments

from hf_w2v2.classify.arguments import ClassifyDataArguments
from hf_w2v2.classify.data import (
    FRAME_LABELS,
    ClipDataset,
    ClipLengths,
    LabeledClip,
    label_names,
    load_clips,
    load_frame_clips,
    read_labeled,
)
from hf_w2v2.classify.inference import min_samples_for
from hf_w2v2.models.lengths import conv_output_length
from hf_w2v2.training.arguments import ModelArguments, base_config, corpus_name


@dataclass
class Sets:
    names: list[str]  # class names (speakers for xvector, FRAME_LABELS for frame)
    train: ClipDataset | None
    evals: dict[str, ClipDataset]
    eval_labels: dict[str, list[str]]  # per eval set, its own class names (xvector: its speakers)

    def reports(self) -> str:
        """Every set's counts (kept, too short, unreadable, unseen class), one per line."""
        reports = ([self.train.report] if self.train else []) + [d.report for d in self.evals.values()]
        return "\n".join(r.format() for r in reports) + "\n"


def read_all(data_args: ClassifyDataArguments) -> tuple[list[LabeledClip], dict[str, list[LabeledClip]]]:
    frame = data_args.task == "frame"
    read = lambda src: read_labeled(src, data_args.label_column, data_args.audio_column, allow_empty=frame)
    train = read(data_args.train_data)[: data_args.max_train_samples] if data_args.train_data else []
    evals = {name: read(path)[: data_args.max_eval_samples] for name, path in data_args.named_eval_sets()}
    return train, evals


def class_names(train: list[LabeledClip], model_args: ModelArguments, data_args: ClassifyDataArguments) -> list[str]:
    """Frame task: non-speech/speech; else the training labels, or (evaluation only) the model's own."""
    if data_args.task == "frame":
        return list(FRAME_LABELS)
    if train:
        return label_names(train, corpus_name(data_args.train_data or ""), data_args.label_column)
    id2label: Any = base_config(model_args).id2label
    return [str(id2label[i]) for i in range(len(id2label))]


def load_sets(model_args: ModelArguments, data_args: ClassifyDataArguments, training_args: TrainingArguments) -> Sets:
    """Decode the training and evaluation clips; every skip is counted in the datasets' reports."""
    train_clips, eval_clips = read_all(data_args)
    if training_args.do_train and not train_clips:
        raise ValueError("--do_train needs --train_data")
    names = class_names(train_clips, model_args, data_args)
    config = base_config(model_args)
    field_ = min_samples_for(config, "sequence")
    pad = min_samples_for(config, data_args.task) if data_args.task == "xvector" else 0
    workers, progress = data_args.preprocessing_num_workers, not training_args.disable_tqdm
    if data_args.task == "frame":
        frames = lambda n: int(conv_output_length(n, config.conv_kernel, config.conv_stride))
        hop = int(np.prod(config.conv_stride))
        load = lambda name, clips, _ids: load_frame_clips(name, clips, field_, frames, hop, workers, progress)
    else:
        lengths = ClipLengths(field_, data_args.max_seconds, pad_to_samples=pad)
        load = lambda name, clips, ids: load_clips(name, clips, ids, lengths, workers, progress)
    ids = {n: i for i, n in enumerate(names)}
    train = load("train", train_clips, ids) if train_clips and training_args.do_train else None
    evals, eval_labels = {}, {}
    for name, clips in eval_clips.items():
        own = label_names(clips, name, data_args.label_column) if data_args.task == "xvector" else names
        evals[name] = load(name, clips, {n: i for i, n in enumerate(own)})
        eval_labels[name] = own
    return Sets(names, train, evals, eval_labels)
