"""What a decoder returns: the text with character and word time spans.

Times are in seconds from the start of the audio. A frame of the encoder is one hop of its
convolution stack (``hf_w2v2.models.lengths.hop_length(config.conv_stride)`` samples); a span
covering frames ``[start_frame, end_frame)`` lasts from ``start_frame * seconds_per_frame`` to
``end_frame * seconds_per_frame``. A word's ``confidence`` (in [0, 1]) comes from the CTC posteriors
(:func:`hf_w2v2.decoding.confidence.with_confidences`). Decoders know no model: callers that hold one pass its
``seconds_per_frame`` (the :class:`~hf_w2v2.inference.transcribe.Transcriber` does);
:data:`SECONDS_PER_FRAME` is only the decoders' default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

SECONDS_PER_FRAME = 0.02  # default of the decoders: a 320-sample hop at 16 kHz (every released checkpoint)


@dataclass(frozen=True)
class Span:
    """A character or word and where it is in the audio (``end_frame`` exclusive); ``confidence`` in
    [0, 1] where it was computed (words of a :class:`~hf_w2v2.inference.transcribe.Transcriber`), else ``None``."""

    text: str
    start_frame: int
    end_frame: int
    start: float  # seconds
    end: float  # seconds
    confidence: float | None = None

    @classmethod
    def from_frames(cls, text: str, start_frame: int, end_frame: int, seconds_per_frame: float) -> Span:
        start, end = round(start_frame * seconds_per_frame, 6), round(end_frame * seconds_per_frame, 6)
        return cls(text, start_frame, end_frame, start, end)

    def shifted(self, frames: int, seconds_per_frame: float) -> Span:
        """The same span ``frames`` later (a segment's spans placed in the whole recording)."""
        moved = Span.from_frames(self.text, self.start_frame + frames, self.end_frame + frames, seconds_per_frame)
        return replace(moved, confidence=self.confidence)


@dataclass(frozen=True)
class WordTiming:
    """One word for a client: its time in seconds and its confidence in [0, 1] (from the CTC posteriors)."""

    word: str
    start: float  # seconds
    end: float  # seconds
    confidence: float


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

    def word_timings(self) -> tuple[WordTiming, ...]:
        """The words as :class:`WordTiming` (a word without a computed confidence gets 0.0)."""
        return tuple(
            WordTiming(w.text, round(w.start, 3), round(w.end, 3), round(w.confidence or 0.0, 4)) for w in self.words
        )

    def shifted(self, frames: int, seconds_per_frame: float) -> Transcription:
        """This transcription of a segment placed ``frames`` into the whole recording."""
        words = [w.shifted(frames, seconds_per_frame) for w in self.words]
        chars = [c.shifted(frames, seconds_per_frame) for c in self.chars]
        return Transcription(self.text, words, chars, self.score)


def join_transcriptions(parts: list[Transcription]) -> Transcription:
    """Transcriptions of consecutive segments (already placed with :meth:`Transcription.shifted`) as one;
    the score is the sum of the parts' scores when they all have one."""
    scores = [p.score for p in parts]
    return Transcription(
        text=" ".join(p.text for p in parts if p.text),
        words=[w for p in parts for w in p.words],
        chars=[c for p in parts for c in p.chars],
        score=None if not parts or any(s is None for s in scores) else float(sum(s for s in scores if s is not None)),
    )
