"""Processor (vocabulary + feature extractor) and datasets for CTC fine-tuning.

Which vocabulary is used, first match wins:

1. resuming: the checkpoint's (a vocabulary built now must equal it, see
   :mod:`hf_w2v2.finetune.resume`);
2. ``--tokenizer_name_or_path``;
3. the pre-trained model's own tokenizer, when its folder has one (further fine-tuning
   of a CTC model keeps its head and ids);
4. built from the normalised training transcripts.

Every utterance left out is counted (:class:`hf_w2v2.data.prepare.FilterReport`): empty
transcripts, unreadable audio, clips shorter than the receptive field or with fewer frames
than CTC needs for their labels, training clips longer than ``max_duration``. Characters
outside the vocabulary are counted in a coverage report.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2Processor

from hf_w2v2.data.ctc_filter import CTCFilter
from hf_w2v2.data.processor import build_processor
from hf_w2v2.data.sources import Utterance, read_source
from hf_w2v2.text.coverage import CoverageReport
from hf_w2v2.text.normalize import TextNormalizer
from hf_w2v2.text.vocab import build_tokenizer

if TYPE_CHECKING:
    import datasets

    from hf_w2v2.data.prepare import FilterReport

logger = logging.getLogger(__name__)


@dataclass
class Split:
    """One prepared corpus: the dataset, the utterance names in dataset order, what was dropped."""

    name: str
    dataset: datasets.Dataset
    names: list[str]
    report: FilterReport

    @property
    def frame_source_lengths(self) -> list[int]:
        """Samples per item, in dataset order (to trim padded frames before decoding)."""
        lengths = getattr(self.dataset, "lengths", None)  # a lazy dataset knows them from the headers
        return list(lengths) if lengths is not None else [int(n) for n in self.dataset["input_length"]]


@dataclass
class PreparedData:
    """Everything the Trainer needs from the data side."""

    processor: Wav2Vec2Processor
    train: Split | None
    evals: dict[str, Split] = field(default_factory=dict)
    coverage: CoverageReport | None = None
    vocab_source: str = ""
    cache_seconds: float = 0.0
    """Time spent computing cached frozen conv outputs (``--cache_frozen_features``), charged to the budget."""


def read_utterances(
    source: str, text_column: str = "text", audio_column: str | None = None, limit: int | None = None
) -> list[Utterance]:
    """Utterances of a corpus (a ``DatasetDict`` source must be one split's folder or file)."""
    utterances = read_source(source, text_column=text_column, audio_column=audio_column)
    if isinstance(utterances, dict):
        raise ValueError(f"{source} holds several splits {sorted(utterances)}; point at one split")
    return utterances[:limit] if limit is not None else utterances


def load_existing_processor(name_or_path: str, config: Any) -> Wav2Vec2Processor | None:
    """The processor (or bare CTC tokenizer) saved at ``name_or_path``, or None if there is none."""
    try:
        return Wav2Vec2Processor.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError):
        pass
    try:
        tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError, TypeError):
        return None
    return build_processor(config, tokenizer)


def choose_processor(
    config: Any,
    train_texts: list[str],
    normalizer: TextNormalizer,
    tokenizer_name_or_path: str | None = None,
    model_name_or_path: str | None = None,
    min_count: int = 1,
) -> tuple[Wav2Vec2Processor, str]:
    """Steps 2-4 of the module docstring; returns the processor and where its vocabulary came from."""
    if tokenizer_name_or_path:
        processor = load_existing_processor(tokenizer_name_or_path, config)
        if processor is None:
            raise ValueError(
                f"no tokenizer found at {tokenizer_name_or_path!r} (expected vocab.json + tokenizer_config.json)"
            )
        return processor, f"tokenizer {tokenizer_name_or_path}"
    if model_name_or_path and os.path.isdir(model_name_or_path):
        processor = load_existing_processor(model_name_or_path, config)
        if processor is not None:
            return processor, f"the tokenizer of {model_name_or_path}"
    if not train_texts:
        raise ValueError("no tokenizer given and no training transcripts to build a vocabulary from")
    with tempfile.TemporaryDirectory() as scratch:  # the tokenizer keeps the vocabulary in memory
        tokenizer = build_tokenizer((normalizer(t) for t in train_texts), scratch, min_count=min_count)
    return build_processor(config, tokenizer), "built from the training transcripts"


def kept_names(utterances: list[Utterance], report: FilterReport) -> list[str]:
    """Names of the utterances :func:`prepare_ctc_dataset` kept, in dataset order."""
    dropped = set(report.empty_transcript) | set(report.too_short) | set(report.too_long) | set(report.dropped_oov)
    unreadable = list(report.unreadable)
    names = [u.name for u in utterances if u.name not in dropped and not any(u.name in reason for reason in unreadable)]
    if len(names) != report.kept:
        logger.warning("could not match kept utterances to names (%d vs %d); using indices", len(names), report.kept)
        names = [f"item{i}" for i in range(report.kept)]
    return names


def prepare_split(
    name: str,
    utterances: list[Utterance],
    processor: Wav2Vec2Processor,
    config: Any,
    filters: CTCFilter,
    num_workers: int | None = None,
    lazy: bool = False,
) -> Split:
    """Decode, filter and tokenise one corpus; logs its :class:`FilterReport`.

    ``lazy``: check it from headers and transcripts only and decode each clip when it is read
    (:mod:`hf_w2v2.data.lazy`), for corpora larger than RAM."""
    from hf_w2v2.data.prepare import prepare_ctc_dataset

    if lazy:
        from hf_w2v2.data.lazy import prepare_lazy_ctc_dataset

        lazy_set, report = prepare_lazy_ctc_dataset(utterances, processor, config, filters, num_workers=num_workers)
        return Split(name=name, dataset=lazy_set, names=lazy_set.names, report=report)

    dataset, report = prepare_ctc_dataset(
        utterances, processor, config, filters, num_workers=num_workers
    )  # prepare_ctc_dataset logs the report
    return Split(name=name, dataset=dataset, names=kept_names(utterances, report), report=report)
