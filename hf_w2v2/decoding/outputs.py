"""What a decoder returns: the text with character and word time spans.

Times are in seconds from the start of the audio. A frame of the wav2vec 2.0 encoder is
one hop of its convolution stack: 320 samples = 20 ms at 16 kHz. A span covering frames
``[start_frame, end_frame)`` lasts from ``start_frame * 0.02`` s to ``end_frame * 0.02`` s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

SAMPLES_PER_FRAME = 320  # product of the conv strides (5, 2, 2, 2, 2, 2, 2)
SAMPLING_RATE = 16_000  # Hz
SECONDS_PER_FRAME = SAMPLES_PER_FRAME / SAMPLING_RATE  # 0.02 s


def encoder_hop(conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2)) -> int:
    """Samples between two encoder frames: the product of the conv strides (320)."""
    hop = 1
    for stride in conv_stride:
        hop *= stride
    return hop


def frame_seconds(conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2), sampling_rate: int = SAMPLING_RATE) -> float:
    """Seconds between two encoder frames (0.02 s for wav2vec 2.0 at 16 kHz)."""
    return encoder_hop(conv_stride) / sampling_rate


@dataclass(frozen=True)
class Span:
    """A character or word and where it is in the audio (``end_frame`` exclusive)."""

    text: str
    start_frame: int
    end_frame: int
    start: float  # seconds
    end: float  # seconds

    @classmethod
    def from_frames(cls, text: str, start_frame: int, end_frame: int, seconds_per_frame: float) -> Span:
        start, end = round(start_frame * seconds_per_frame, 6), round(end_frame * seconds_per_frame, 6)
        return cls(text, start_frame, end_frame, start, end)


@dataclass
class Transcription:
    """Decoded text of one utterance.

    ``chars`` are the emitted characters (word delimiters excluded); ``score`` is the
    decoder's total score where it has one (beam search), else ``None``.
    """

    text: str
    words: list[Span] = field(default_factory=list)
    chars: list[Span] = field(default_factory=list)
    score: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)
