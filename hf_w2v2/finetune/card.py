"""What the model card of a CTC fine-tuning run says (rendered by :mod:`hf_w2v2.training.model_card`): its
Hub metadata and sections (:data:`CTC_CARD`) and the run's rows, data and hyper-parameters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hf_w2v2.finetune.arguments import CTCModelArguments, DataArguments
from hf_w2v2.finetune.data import PreparedData, Split
from hf_w2v2.training.arguments import CardArguments, corpus_name
from hf_w2v2.training.curves import CURVES_FILE, DATA_REPORT_FILE
from hf_w2v2.training.lifecycle import RunResult, RunStart, health_paragraph
from hf_w2v2.training.model_card import (
    CardInputs,
    CardSection,
    CardTask,
    EvalRow,
    training_hyperparameters,
    write_model_card,
)
from hf_w2v2.training.model_setup import describe_frozen_encoder
from hf_w2v2.training.nonfinite import NONFINITE_METRIC

INTENDED_USE = (
    "Transcribing short recordings of the kind it was trained on (language, speaking style, "
    "recording conditions), and as a starting point for further fine-tuning."
)
LIMITATIONS = (
    "Trained on a small corpus: expect much higher error rates on speech unlike the training data "
    "(other accents, spontaneous speech, noise, far-field microphones). Greedy CTC decoding without a "
    "language model; characters outside the vocabulary can never be produced."
)
HOW_TO_USE = """The model hears $sampling_rate Hz mono audio: resample every clip to that rate first (a clip at
another rate, passed as if it were at $sampling_rate Hz, gives confident garbage, with no error).

```python
import soundfile as sf
import soxr
import torch
from transformers import Wav2Vec2Processor
from hf_w2v2 import Wav2Vec2ForCTC

processor = Wav2Vec2Processor.from_pretrained("MODEL_FOLDER")
model = Wav2Vec2ForCTC.from_pretrained("MODEL_FOLDER").eval()
model_rate = processor.feature_extractor.sampling_rate  # $sampling_rate
audio, rate = sf.read("clip.flac", dtype="float32", always_2d=True)  # any rate, any channel count
audio = soxr.resample(audio.mean(axis=1), rate, model_rate)  # mono, at the model's rate
inputs = processor(audio, sampling_rate=model_rate, return_tensors="pt")
with torch.no_grad():
    ids = model(**inputs).logits.argmax(-1)
print(processor.batch_decode(ids)[0])
```

or `hf-w2v2 transcribe --model MODEL_FOLDER clip.flac` (it resamples and down-mixes itself). transformers'
`pipeline("automatic-speech-recognition", model="MODEL_FOLDER")` given a file path decodes it with
ffmpeg, which must be installed; pass it the array above instead:
`pipe({"raw": audio, "sampling_rate": model_rate})`."""
ABOUT = """- **Architecture:** wav2vec 2.0 encoder with a character CTC head (`Wav2Vec2ForCTC`, loads in
  `hf_w2v2` and in stock `transformers`).
- **Initialisation:** $base_model
- **Language:** $language · **Licence:** $license"""
EVALUATION = """Greedy CTC decoding, no language model. WER and CER over whole splits (jiwer), transcripts
normalised as in training (upper case, punctuation removed, apostrophes kept).

$eval_table

Per-utterance errors: `predictions_<split>.tsv` (worst first). Training curves:
![training curves]($curves_file)"""
TRAINING_DATA = """$data_section

Utterances left out (empty transcripts, unreadable or too short/long audio, labels longer
than the frames) are counted in `$data_report_file`."""
CTC_CARD = CardTask(
    tags=("automatic-speech-recognition", "wav2vec2", "ctc", "hf_w2v2"),
    pipeline_tag="automatic-speech-recognition",
    result_task="automatic-speech-recognition",
    result_task_name="Speech Recognition",
    hub_metrics=("wer", "cer"),
    metric_names={"wer": "WER", "cer": "CER"},
    size_label="utterances",
    decimals=3,
    sections=(
        CardSection(None, ABOUT),
        CardSection("Evaluation", EVALUATION),
        CardSection("Training data", TRAINING_DATA),
        CardSection("Training hyper-parameters", "$hyperparameters_table"),
        CardSection("How to use", HOW_TO_USE),
        CardSection("Intended use", "$intended_use"),
        CardSection("Limitations", "$limitations"),
    ),
)
"""What every CTC card says: speech-recognition metadata (WER and CER of each split in the model-index) and
its sections, filled from :func:`ctc_placeholders` and the shared values of the card."""


def ctc_placeholders(sampling_rate: int) -> dict[str, str]:
    """The CTC sections' own ``$placeholders`` (``sampling_rate``: the model's, in Hz)."""
    return {"curves_file": CURVES_FILE, "data_report_file": DATA_REPORT_FILE, "sampling_rate": str(sampling_rate)}


def split_prefix(split: Split, before_training: bool = False) -> str:
    """Metric-key prefix of a split: ``eval``, ``eval_before`` (before training) or ``test_<name>``."""
    prefix = "eval" if split.name == "eval" else f"test_{split.name}"
    return f"{prefix}_before" if before_training else prefix


def eval_row(
    split: Split, metrics: dict[str, float], data_args: DataArguments, before_training: bool = False
) -> EvalRow:
    prefix = split_prefix(split, before_training)
    source = data_args.eval_data if split.name == "eval" else dict(data_args.named_test_sets())[split.name]
    return EvalRow(
        split=f"{split.name} (before training)" if before_training else split.name,
        size=split.report.kept,
        metrics={"wer": metrics[f"{prefix}_wer"], "cer": metrics[f"{prefix}_cer"]},
        dataset=corpus_name(str(source)),
        hours=split.report.kept_seconds / 3600,
        before_training=before_training,
    )


def training_corpora(data_args: DataArguments, train_name: str) -> list[tuple[str, int]]:
    """(name, times listed) per distinct training corpus, in order: a corpus given twice is read twice."""
    if not data_args.train_data:
        return []
    sources = [data_args.train_data, *data_args.extra_train_data]
    names = [train_name] + [corpus_name(source) for source in data_args.extra_train_data]
    keys = [os.path.realpath(source) for source in sources]
    first = {key: names[keys.index(key)] for key in keys}
    return [(first[key], keys.count(key)) for key in dict.fromkeys(keys)]


def data_section(data_args: DataArguments, data: PreparedData, corpora: list[tuple[str, int]]) -> str:
    text = [
        "- Training corpus: "
        + " + ".join(
            f"`{name}`" + (f" (x{times}: its clips are seen {times} times as often)" if times > 1 else "")
            for name, times in corpora
        )
    ]
    report = data.train.report if data.train else None
    if report is not None and report.total:  # a stream's counts are in the training log
        text.append(
            f"- {report.kept} utterances, {report.kept_seconds / 3600:.2f} h after filtering "
            f"({report.total - report.kept} dropped: see `{DATA_REPORT_FILE}`)"
        )
    text.append(
        f"- Vocabulary: {len(data.processor.tokenizer)} tokens ({data.vocab_source}), "
        f"transcripts normalised to case `{data_args.case}`"
    )
    return "\n".join(text)


def write_ctc_card(
    run: RunStart,
    model_args: CTCModelArguments,
    data_args: DataArguments,
    card_args: CardArguments,
    data: PreparedData,
    model: Any,
    result: RunResult,
) -> str:
    """The run's ``README.md``: evaluation rows, data, hyper-parameters, and the health monitor's warnings."""
    train_name = card_args.dataset_name or (corpus_name(data_args.train_data) if data_args.train_data else "")
    corpora = training_corpora(data_args, train_name)
    init = model_args.initialisation()
    extra_hp = {
        "init": init,
        "feature_encoder": describe_frozen_encoder(model),
        "max_train_minutes": data_args.max_train_minutes,
        "train_runtime_s": round(result.metrics.get("train_runtime", 0.0)),
        "nonfinite_loss_batches_skipped": result.metrics.get(NONFINITE_METRIC, 0),
        **model_args.overrides(),
    }
    pretrained = model_args.model_name_or_path
    inputs = CardInputs(
        model_name=card_args.model_name or Path(run.output_dir).resolve().name,
        task=CTC_CARD,
        language=card_args.language,
        license=card_args.license,
        base_model=pretrained if pretrained and not os.path.isdir(pretrained) else None,
        initialisation=f"pre-trained weights from `{pretrained}`" if pretrained else None,
        datasets=[name for name, _ in corpora],
        evals=result.rows,
        hyperparameters=training_hyperparameters(run.args, extra_hp, result.metrics.get("epoch")),
        data_section=data_section(data_args, data, corpora),
        summary=f"A wav2vec 2.0 CTC speech recogniser fine-tuned from {init} with "
        "hf_w2v2 (`examples/finetune_ctc.py`); greedy decoding.",
        intended_use=card_args.intended_use or INTENDED_USE,
        limitations=(card_args.limitations or LIMITATIONS) + health_paragraph(result.health_warnings),
        extra=ctc_placeholders(data.processor.feature_extractor.sampling_rate),
    )
    return write_model_card(run.output_dir, inputs, card_args.card_template)
