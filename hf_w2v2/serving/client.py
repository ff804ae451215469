"""Python client of ``hf-w2v2 serve``: stream audio over ``/v1/stream`` or upload a file.

:func:`stream_audio` sends a recording in chunks, paced at ``speed`` times real time (0: as fast as
the server takes it; pace, chunk size and sample format are one :class:`SendSettings`), and records
every message with the time it arrived and the send time of the audio it covers, from which the
bench computes latencies. ``examples/stream_client.py`` is the command-line wrapper.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE, load_audio
from hf_w2v2.serving.protocol import PCM16_SCALE

STREAM_PATH = "/v1/stream"
DEFAULT_CHUNK_SECONDS = 0.1  # audio per binary message; a microphone sends 10 to 100 ms
CLOSE_TIMEOUT_SECONDS = 60.0  # wait this long for "done" after "end"


class StreamRejected(RuntimeError):
    """The server refused the WebSocket handshake (401, 404, 503); ``retry_after`` in seconds if given."""

    def __init__(self, status: int, body: str, retry_after: float | None) -> None:
        self.status, self.body, self.retry_after = status, body, retry_after
        super().__init__(f"stream refused with HTTP {status}: {body}")


@dataclass
class Received:
    """One server message with when it came (seconds since the first audio was sent) and ``lag``.

    ``lag``: arrival minus the time the client sent the last audio the message covers (from the
    message's ``audio_seconds``), the delay the user sees; ``None`` for messages without one.
    """

    message: dict[str, Any]
    at: float
    lag: float | None


@dataclass
class StreamResult:
    """All messages of one stream, in order."""

    received: list[Received] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message["type"] == kind]

    @property
    def text(self) -> str:
        """The finals joined: the stream's transcript."""
        return " ".join(m["text"] for m in self.of_type("final") if m["text"])

    @property
    def error(self) -> str | None:
        errors = self.of_type("error")
        return errors[0]["message"] if errors else None

    @property
    def done(self) -> bool:
        return bool(self.of_type("done"))


def websocket_url(base_url: str) -> str:
    """``http://host:port`` -> ``ws://host:port/v1/stream`` (``https`` -> ``wss``)."""
    return base_url.rstrip("/").replace("http", "ws", 1) + STREAM_PATH


def encode(samples: np.ndarray, fmt: str) -> bytes:
    """Float samples in [-1, 1] as little-endian ``pcm_s16le`` or ``f32le`` bytes."""
    if fmt == "f32le":
        return samples.astype("<f4").tobytes()
    return np.clip(np.round(samples * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1).astype("<i2").tobytes()


@dataclass(frozen=True)
class SendSettings:
    """How :func:`stream_audio` sends a recording: its pace, chunk size and sample format."""

    speed: float = 1.0
    """Pace in multiples of real time (1: as a microphone would; 0: as fast as the server takes it)."""
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS
    """Seconds of audio per binary message (a microphone sends 10 to 100 ms)."""
    fmt: str = "pcm_s16le"
    """Sample format on the wire: ``"pcm_s16le"`` (16-bit little-endian) or ``"f32le"`` (float32)."""


async def stream_audio(
    base_url: str,
    audio: np.ndarray,
    sample_rate: int,
    sending: SendSettings | None = None,
    token: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> StreamResult:
    """Stream ``(T,)`` float ``audio`` at ``sample_rate`` (Hz) to the server; returns every message it sent.

    ``sending``: pace, chunk size and sample format (default: real time, 100 ms chunks, ``pcm_s16le``).
    ``on_message`` is called with each server message as it arrives (to print partials live).

    Raises:
        StreamRejected: the handshake was refused (wrong token, too many streams).
    """
    sending = sending or SendSettings()
    speed, fmt = sending.speed, sending.fmt
    headers = {"Authorization": f"Bearer {token}"} if token else None
    chunk = max(1, int(sending.chunk_seconds * sample_rate))
    result = StreamResult(audio_seconds=audio.shape[0] / sample_rate)
    sent_at: list[float] = []  # wall time each chunk left, for the lags
    sent_until: list[float] = []  # audio seconds sent up to the end of each chunk
    try:
        async with connect(
            websocket_url(base_url), additional_headers=headers, proxy=None, compression=None, max_size=None
        ) as ws:
            start = time.perf_counter()

            def lag(message: dict[str, Any], now: float) -> float | None:
                covered = message.get("audio_seconds")
                if covered is None or not sent_until:
                    return None
                i = min(bisect.bisect_left(sent_until, covered - 1e-6), len(sent_at) - 1)
                return now - sent_at[i]

            async def listen() -> None:
                async for raw in ws:
                    now = time.perf_counter() - start
                    message = json.loads(raw)
                    result.received.append(Received(message, now, lag(message, now)))
                    if on_message is not None:
                        on_message(message)
                    if message["type"] in ("done", "error"):
                        return

            listener = asyncio.create_task(listen())
            await ws.send(json.dumps({"sample_rate": sample_rate, "format": fmt}))
            for first in range(0, audio.shape[0], chunk):
                if speed > 0:
                    await asyncio.sleep(max(0.0, start + first / sample_rate / speed - time.perf_counter()))
                if listener.done():
                    break  # the server answered with an error
                await ws.send(encode(audio[first : first + chunk], fmt))
                sent_at.append(time.perf_counter() - start)
                sent_until.append(min(first + chunk, audio.shape[0]) / sample_rate)
            if not listener.done():
                await ws.send(json.dumps({"type": "end"}))
            await asyncio.wait_for(listener, CLOSE_TIMEOUT_SECONDS)
            result.wall_seconds = time.perf_counter() - start
    except InvalidStatus as err:
        response = err.response
        retry = response.headers.get("Retry-After")
        raise StreamRejected(
            response.status_code, response.body.decode(errors="replace"), None if retry is None else float(retry)
        ) from None
    except ConnectionClosed:
        pass  # the server closed after its error frame; what came before is in the result
    return result


def stream_file(
    base_url: str,
    path: str,
    sample_rate: int = TARGET_SAMPLING_RATE,
    sending: SendSettings | None = None,
    token: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> StreamResult:
    """Decode ``path`` at ``sample_rate`` (Hz) and :func:`stream_audio` it (blocking)."""
    audio = load_audio(path, sample_rate)
    return asyncio.run(stream_audio(base_url, audio, sample_rate, sending, token, on_message))


def transcribe_file(
    base_url: str, path: str, token: str | None = None, endpoint: str = "/v1/transcribe"
) -> dict[str, Any]:
    """Upload ``path`` as multipart field ``file``; the server's JSON answer (raises ``HTTPError`` on 4xx/5xx)."""
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="audio"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(base_url.rstrip("/") + endpoint, data=body, method="POST")
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback or named host: no proxy
    with opener.open(request) as response:
        return json.loads(response.read())
