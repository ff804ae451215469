"""What a decoder returns: the text with character and word time spans.

Times are in seconds from the start of the audio. A frame of the encoder is one hop of its
convolution stack (``hf_w2v2.models.lengths.hop_length(config.conv_stride)`` samples); a span
covering frames ``[start_frame, end_frame)`` lasts from ``start_frame * seconds_per_frame`` to
``end_frame * seconds_per_frame``. Decoders know no model: callers that hold one pass its
``seconds_per_frame`` (the :class:`~hf_w2v2.inference.transcribe.Transcriber` does);
:data:`SECONDS_PER_FRAME` is only the decoders' default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SECONDS_PER_FRAME = 0.02  # default of the decoders: a 320-sample hop at 16 kHz (every released checkpoint)


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
