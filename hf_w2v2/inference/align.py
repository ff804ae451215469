"""Forced alignment of audio files to known transcripts with a fine-tuned CTC model.

The model's logits for the whole recording (each segment run alone when the transcriber has a
segmenter, windowed inside segments longer than its window, as in transcription) go through
:func:`hf_w2v2.decoding.align.align_logits`, the CTC Viterbi alignment.

Characters the model cannot emit are aligned as its unknown token: the times of their words are
guesses. :func:`check_transcript` warns, naming them, and refuses a transcript with no character
the model knows (punctuation only, another script), whose "alignment" would be all guesswork.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from hf_w2v2.data.audio import load_audio
from hf_w2v2.decoding.align import Alignment, align_logits
from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.inference.transcribe import Transcriber

logger = logging.getLogger(__name__)


def out_of_vocabulary(transcript: str, alphabet: CTCAlphabet) -> list[str]:
    """Distinct characters of ``transcript`` (spaces aside) the alphabet lacks in either case, in order."""
    known = alphabet.characters
    missing = [c for c in transcript if not c.isspace() and not {c, c.upper(), c.lower()} & known]
    return list(dict.fromkeys(missing))


def check_transcript(transcript: str, alphabet: CTCAlphabet) -> list[str]:
    """The out-of-vocabulary characters of ``transcript``, logged as a warning when there are any.

    Raises:
        ValueError: no character of the transcript is in the model's vocabulary (it names them).
    """
    missing = out_of_vocabulary(transcript, alphabet)
    if not missing:
        return missing
    if all(c.isspace() or c in missing for c in transcript):
        raise ValueError(
            f"no character of the transcript {transcript[:80]!r} is in the model's vocabulary "
            f"(it lacks {''.join(missing)!r}): nothing to align; give the words as the model writes them"
        )
    count = sum(1 for c in transcript if c in missing)
    logger.warning(
        "%d character(s) of the transcript are not in the model's vocabulary: %r; they are aligned as the "
        "unknown token, so the times of their words are guesses (normalise the transcript to the model's "
        "alphabet to avoid this)",
        count,
        "".join(missing),
    )
    return missing


def align_array(transcriber: Transcriber, audio: np.ndarray, transcript: str) -> Alignment:
    """Character and word times of ``transcript`` in ``audio`` (T,) at the model's sampling rate.

    Raises:
        ValueError: see :func:`check_transcript`.
    """
    check_transcript(transcript, transcriber.alphabet)
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
