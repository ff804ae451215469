"""The model behind the server, and the bounded thread pool it runs in.

A CTC folder gives a :class:`~hf_w2v2.inference.transcribe.Transcriber` (with the folder's saved
beam-search decoder when it has one) and a streaming transcriber over it; a sequence
classification folder gives a classifier. Every model call goes through :meth:`ModelService.run`,
which hands it to ``workers`` threads, so the event loop keeps answering while the model works.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from hf_w2v2.classify.inference import load_model, min_samples_for, run_batches
from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio_bytes, normalize_waveform
from hf_w2v2.inference.batching import check_length
from hf_w2v2.inference.segments import ModelVAD, Segmenter
from hf_w2v2.inference.streaming import StreamingTranscriber, StreamSession, StreamSettings
from hf_w2v2.inference.transcribe import Transcriber

T = TypeVar("T")
CTC_ARCHITECTURE = "Wav2Vec2ForCTC"
CLASSIFIER_ARCHITECTURE = "Wav2Vec2ForSequenceClassification"
UPLOAD_NAME = "upload"  # how an uploaded file is named in messages; its client-given name is never used


@dataclass(frozen=True)
class Timed:
    """A result with the seconds of model compute it took."""

    value: Any
    seconds: float


def folder_kind(model_dir: str) -> str:
    """``"ctc"`` or ``"classifier"``, read from ``config.json``'s ``architectures``."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir} is not a model folder: it has no config.json")
    with open(path, encoding="utf-8") as f:
        architectures = json.load(f).get("architectures") or []
    if CTC_ARCHITECTURE in architectures:
        return "ctc"
    if CLASSIFIER_ARCHITECTURE in architectures:
        return "classifier"
    raise ValueError(
        f"{model_dir} holds a {architectures} model; serve takes a CTC ({CTC_ARCHITECTURE}) "
        f"or an utterance classification ({CLASSIFIER_ARCHITECTURE}) folder"
    )


class ModelService:
    """One loaded model folder and the pool its calls run in.

    Args:
        model_dir: a CTC or sequence-classification model folder.
        workers: threads running model calls.
        stream: settings of the streaming transcriber (CTC folders).
        vad_dir: a frame-classification (VAD) model folder cutting finals at pauses; ``None``: energy VAD.
        device, precision: as for :class:`~hf_w2v2.inference.transcribe.Transcriber`.
        calibration: with ``precision="auto"``, an audiofolder (``metadata.csv`` with ``file_name`` and
            ``text``) whose first recordings choose the path before the service starts, guarded against
            their transcripts (:meth:`~hf_w2v2.inference.transcribe.Transcriber.choose_path_on`); ``None``:
            the first request chooses, guarded against fp32's tokens.
    """

    def __init__(
        self,
        model_dir: str,
        workers: int = 2,
        stream: StreamSettings | None = None,
        vad_dir: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        calibration: str | None = None,
    ) -> None:
        if calibration is not None and precision != "auto":  # before the model is loaded
            raise ValueError(f"calibration recordings are for precision='auto', not {precision!r}")
        self.model_dir = model_dir
        self.kind = folder_kind(model_dir)
        self.transcriber: Transcriber | None = None
        self.streaming: StreamingTranscriber | None = None
        self.classifier: Any = None
        if self.kind == "ctc":
            stream = stream or StreamSettings()
            vad = None if vad_dir is None else ModelVAD.from_pretrained(vad_dir, device=device)
            # Uploads are cut at the same pauses as streams, so a file's upload equals its stream's finals.
            segmenter = Segmenter(stream.segment_settings(), vad)
            self.transcriber = Transcriber.from_pretrained(
                model_dir, device=device, precision=precision, segmenter=segmenter
            )
            self.streaming = StreamingTranscriber(self.transcriber, stream, vad)
            self.sampling_rate = self.transcriber.sampling_rate
            if calibration is not None:
                self.transcriber.choose_path_on(calibration)
        else:
            self.classifier = load_model(model_dir, device=device)
            self.sampling_rate = TARGET_SAMPLING_RATE
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hf-w2v2-model")

    @property
    def has_lm(self) -> bool:
        return self.transcriber is not None and self.transcriber.decoder is not None

    async def run(self, fn: Callable[..., T], *args: Any) -> Timed:
        """``fn(*args)`` in the pool, with its compute seconds (waiting for a thread excluded)."""

        def timed() -> Timed:
            start = time.perf_counter()
            value = fn(*args)
            return Timed(value, time.perf_counter() - start)

        return await asyncio.get_running_loop().run_in_executor(self.pool, timed)

    def transcribe_bytes(self, data: bytes) -> dict[str, Any]:
        """The JSON answer of ``POST /v1/transcribe`` for an encoded file (any soundfile format, any rate)."""
        assert self.transcriber is not None
        audio = load_audio_bytes(data, self.sampling_rate, name=UPLOAD_NAME)
        check_length(audio, self.transcriber.model.config)
        with torch.inference_mode():
            transcription = self.transcriber.transcribe_array(audio, self.sampling_rate)
        words = [asdict(w) for w in transcription.word_timings()]
        return {"text": transcription.text, "words": words, "duration": audio.shape[0] / self.sampling_rate}

    def classify_bytes(self, data: bytes, top_k: int) -> dict[str, Any]:
        """The JSON answer of ``POST /v1/classify``: the ``top_k`` labels with probabilities, and the duration."""
        audio = load_audio_bytes(data, self.sampling_rate, name=UPLOAD_NAME)
        duration = audio.shape[0] / self.sampling_rate
        needed = min_samples_for(self.classifier.config, "sequence")
        clip = np.pad(normalize_waveform(audio), (0, max(0, needed - audio.shape[0])))
        with torch.inference_mode():
            probs = torch.softmax(run_batches(self.classifier, [clip], 1)[0], dim=-1)  # (L,)
        scores, ids = probs.topk(min(top_k, probs.shape[-1]))
        names = self.classifier.config.id2label
        labels = [{"label": str(names[int(i)]), "score": round(float(s), 6)} for s, i in zip(scores, ids)]
        return {"labels": labels, "duration": duration}

    def session(self, sample_rate: int) -> StreamSession:
        assert self.streaming is not None
        return self.streaming.session(sample_rate)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
