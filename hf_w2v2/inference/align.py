"""Forced alignment of audio files to known transcripts with a fine-tuned CTC model.

The model's logits for the whole recording (each segment run alone when the transcriber has a
segmenter, windowed inside segments longer than its window, as in transcription) go through
:func:`hf_w2v2.decoding.align.align_logits`, the CTC Viterbi alignment.
"""

from __future__ import annotations

import os

import numpy as np

from hf_w2v2.data.audio import load_audio
from hf_w2v2.decoding.align import Alignment, align_logits
from hf_w2v2.inference.transcribe import Transcriber


def align_array(transcriber: Transcriber, audio: np.ndarray, transcript: str) -> Alignment:
    """Character and word times of ``transcript`` in ``audio`` (T,) at the model's sampling rate."""
    logits = transcriber.logits_by_segment(audio)  # (F, V)
    return align_logits(logits, transcript, transcriber.alphabet, transcriber.seconds_per_frame)


def read_transcript(path_or_text: str) -> str:
    """The transcript: the contents of a text file when ``path_or_text`` names one, else the text itself."""
    if os.path.isfile(path_or_text):
        with open(path_or_text, encoding="utf-8") as f:
            return " ".join(f.read().split())
    return path_or_text


def align_file(transcriber: Transcriber, audio_path: str, transcript: str) -> tuple[Alignment, float]:
    """Align ``transcript`` (text, or a text file) to the audio file; returns it and the duration in seconds."""
    audio = load_audio(audio_path, transcriber.sampling_rate)
    return align_array(transcriber, audio, read_transcript(transcript)), audio.shape[0] / transcriber.sampling_rate
