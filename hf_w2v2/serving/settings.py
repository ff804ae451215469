"""What an ``hf-w2v2 serve`` process may accept: limits, the token, the inference pool."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hf_w2v2.inference.streaming import StreamSettings

MIB = 1024 * 1024  # bytes in a mebibyte
TOKEN_ENV = "HF_W2V2_TOKEN"
"""Environment variable read for the bearer token when ``--token`` is not given."""


@dataclass(frozen=True)
class ServerSettings:
    """Limits and resources of one server; every field has a command-line flag (``hf-w2v2 serve --help``)."""

    max_streams: int = 8
    """WebSocket streams served at once; one more is refused with 503 and ``Retry-After``."""
    max_upload_bytes: int = 50 * MIB
    """Largest request body (an uploaded file); a larger one gets 413."""
    token: str | None = None
    """Bearer token every request must carry (``Authorization: Bearer T``, or ``?token=T``); None: open."""
    workers: int = 2
    """Threads running the model; requests and streams beyond that wait their turn (the event loop never does)."""
    stream: StreamSettings = field(default_factory=StreamSettings)
    """Chunking, context and pause settings of the streaming transcriber."""
    max_message_seconds: float = 10.0
    """Most audio one binary WebSocket message may hold."""
    idle_timeout_seconds: float = 30.0
    """A stream that sends nothing for this long (header included) gets an error and is closed."""
    retry_after_seconds: int = 2
    """``Retry-After`` sent with 503 when all streams are taken."""

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")
        if self.max_upload_bytes < 1:
            raise ValueError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.token is not None and not self.token.strip():
            raise ValueError(f"the token is empty: give a non-empty --token or unset {TOKEN_ENV}")


def stream_settings(**overrides: float | None) -> StreamSettings:
    """:class:`StreamSettings` with the fields given (``None`` keeps the default)."""
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return replace(StreamSettings(), **given)
