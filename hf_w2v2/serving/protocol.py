"""The ``/v1/stream`` WebSocket protocol: the header, audio messages, and what the server sends.

Client -> server: first a JSON text message ``{"sample_rate": 16000, "format": "pcm_s16le"}``
(``"f32le"`` also accepted), then binary messages of little-endian mono samples, then
``{"type": "end"}``. Server -> client: ``{"type": "ready"}`` once the header is accepted,
``{"type": "partial" | "final", "text", "words": [{"word", "start", "end", "confidence"}],
"segment", "audio_seconds"}`` as results come (``audio_seconds``: stream audio received when it was sent;
``segment``: the utterance's start and end in seconds), after ``end`` the last final then
``{"type": "done", "audio_seconds"}`` (all the audio it received); any problem is
``{"type": "error", "message"}`` followed by a close. Times are seconds from the stream's start.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the client imports this module and needs no torch
    from hf_w2v2.inference.streaming import StreamEvent

FORMATS: dict[str, np.dtype] = {"pcm_s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
"""Sample formats of binary messages and their numpy types."""
MIN_SAMPLE_RATE = 8_000  # Hz; telephone audio
MAX_SAMPLE_RATE = 192_000  # Hz; the highest rate sound cards offer
F32_LIMIT = 16.0  # |sample| above this is not audio scaled to [-1, 1] (garbage or the wrong format)
PCM16_SCALE = 32768.0  # int16 full scale
HEADER_EXAMPLE = '{"sample_rate": 16000, "format": "pcm_s16le"}'


class ProtocolError(ValueError):
    """A message the protocol does not allow; the text goes to the client in an error frame."""


@dataclass(frozen=True)
class StreamHeader:
    sample_rate: int
    format: str

    @property
    def dtype(self) -> np.dtype:
        return FORMATS[self.format]


def parse_header(message: str | bytes | None) -> StreamHeader:
    """The first message of a stream, checked field by field."""
    if not isinstance(message, str):
        raise ProtocolError(f"the first message must be a JSON text header like {HEADER_EXAMPLE}, got binary data")
    fields = parse_json(message, "header")
    unknown = sorted(set(fields) - {"sample_rate", "format", "type"})
    if unknown:
        raise ProtocolError(f"unknown header field(s) {unknown}; a header is {HEADER_EXAMPLE}")
    if fields.get("type", "start") != "start":
        raise ProtocolError(f"the first message must be the header {HEADER_EXAMPLE}, got type {fields['type']!r}")
    rate = fields.get("sample_rate")
    if rate is None:
        raise ProtocolError(f"header lacks sample_rate; a header is {HEADER_EXAMPLE}")
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ProtocolError(
            f"sample_rate must be an integer from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, got {rate!r}"
        )
    fmt = fields.get("format", "pcm_s16le")
    if fmt not in FORMATS:
        raise ProtocolError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    return StreamHeader(rate, fmt)


def parse_json(message: str, what: str) -> dict[str, Any]:
    try:
        fields = json.loads(message)
    except json.JSONDecodeError as err:
        raise ProtocolError(f"the {what} is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(fields, dict):
        raise ProtocolError(f"the {what} must be a JSON object, got {type(fields).__name__}")
    return fields


def parse_control(message: str) -> str:
    """The ``type`` of a text message after the header; only ``end`` is defined."""
    kind = parse_json(message, "message").get("type")
    if kind != "end":
        raise ProtocolError(
            f'unknown message type {kind!r}: after the header send binary audio, then {{"type": "end"}}'
        )
    return kind


def decode_samples(data: bytes, header: StreamHeader, max_samples: int) -> np.ndarray:
    """``(T,)`` float32 samples in [-1, 1] of one binary message."""
    width = header.dtype.itemsize
    if len(data) % width:
        raise ProtocolError(
            f"a {header.format} message must hold whole {width}-byte samples, got {len(data)} bytes (garbage?)"
        )
    if len(data) // width > max_samples:
        raise ProtocolError(
            f"a message holds {len(data) // width} samples, more than the {max_samples} allowed; send smaller chunks"
        )
    samples = np.frombuffer(data, dtype=header.dtype)
    if header.format == "pcm_s16le":
        return samples.astype(np.float32) / PCM16_SCALE
    if not np.isfinite(samples).all() or np.abs(samples).max(initial=0.0) > F32_LIMIT:
        raise ProtocolError(
            f"f32le samples must be finite and scaled to [-1, 1]; got values beyond {F32_LIMIT} or NaN "
            "(garbage, or pcm_s16le sent as f32le?)"
        )
    return samples.astype(np.float32)


def event_message(event: StreamEvent) -> dict[str, Any]:
    """A partial or final as the JSON object sent to the client."""
    words = [asdict(w) for w in event.words]
    segment = {"start": round(event.start, 3), "end": round(event.end, 3)}
    return {"type": event.type, "text": event.text, "words": words, "segment": segment}


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}
