"""The ASGI app: routes, the stream loop, the web page.

Routes: ``GET /`` (the web page), ``GET /static/*``, ``GET /health``, ``GET /metrics``,
``POST /v1/transcribe`` and ``WS /v1/stream`` (CTC folders), ``POST /v1/classify``
(classification folders). Uploads come as multipart field ``file``; only its bytes are read,
never its file name. Model calls go through :meth:`ModelService.run` (a bounded thread pool).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from hf_w2v2.serving.guards import BodyLimit, TokenGuard
from hf_w2v2.serving.metrics import ServerMetrics
from hf_w2v2.serving.protocol import (
    ProtocolError,
    StreamHeader,
    decode_samples,
    error_message,
    event_message,
    parse_control,
    parse_header,
)
from hf_w2v2.serving.service import ModelService
from hf_w2v2.serving.settings import ServerSettings

logger = logging.getLogger(__name__)
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
DEFAULT_TOP_K = 3  # labels returned by /v1/classify


class StreamSlots:
    """Counts open streams against ``max_streams`` (the event loop is one thread: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0

    def take(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def give_back(self) -> None:
        self.active -= 1


def create_app(service: ModelService, settings: ServerSettings | None = None) -> Starlette:
    """The Starlette app serving ``service`` under ``settings`` (default :class:`ServerSettings`)."""
    settings = settings or ServerSettings()
    metrics = ServerMetrics()
    slots = StreamSlots(settings.max_streams)

    async def page(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "model": os.path.basename(os.path.normpath(service.model_dir)),
                "kind": service.kind,
                "lm": service.has_lm,
                "sample_rate": service.sampling_rate,
                "active_streams": slots.active,
                "max_streams": settings.max_streams,
            }
        )

    async def metrics_page(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    async def upload(request: Request, endpoint: str, kind: str, call: Any) -> Response:
        metrics.requests.labels(endpoint=endpoint).inc()
        if service.kind != kind:
            metrics.errors.labels(endpoint=endpoint, reason="wrong_model").inc()
            other = "/v1/transcribe and /v1/stream" if service.kind == "ctc" else "/v1/classify"
            return JSONResponse({"error": f"this server holds a {service.kind} model: use {other}"}, status_code=404)
        start = time.perf_counter()
        async with request.form(max_files=1, max_fields=8) as form:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                metrics.errors.labels(endpoint=endpoint, reason="bad_request").inc()
                return JSONResponse({"error": "send the audio as multipart/form-data field 'file'"}, status_code=400)
            data = await file.read()
        try:
            timed = await service.run(call, data)
        except ValueError as err:  # AudioLoadError and too-short audio are ValueErrors
            metrics.errors.labels(endpoint=endpoint, reason="bad_audio").inc()
            return JSONResponse({"error": str(err)}, status_code=400)
        except Exception as err:
            logger.exception("%s failed", endpoint)
            metrics.errors.labels(endpoint=endpoint, reason="internal").inc()
            return JSONResponse({"error": f"internal error: {type(err).__name__}: {err}"}, status_code=500)
        result = timed.value
        metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)
        metrics.audio_seconds.labels(endpoint=endpoint).inc(result["duration"])
        if result["duration"] > 0:
            metrics.real_time_factor.labels(endpoint=endpoint).observe(timed.seconds / result["duration"])
        return JSONResponse(result)

    async def transcribe(request: Request) -> Response:
        return await upload(request, "transcribe", "ctc", service.transcribe_bytes)

    async def classify(request: Request) -> Response:
        top_k = request.query_params.get("top_k", str(DEFAULT_TOP_K))
        if not top_k.isdigit() or int(top_k) < 1:
            return JSONResponse({"error": f"top_k must be a positive integer, got {top_k!r}"}, status_code=400)
        return await upload(request, "classify", "classifier", lambda data: service.classify_bytes(data, int(top_k)))

    async def stream(websocket: WebSocket) -> None:
        metrics.requests.labels(endpoint="stream").inc()
        if service.kind != "ctc":
            metrics.errors.labels(endpoint="stream", reason="wrong_model").inc()
            await websocket.send_denial_response(
                JSONResponse({"error": "this server holds a classifier: use /v1/classify"}, status_code=404)
            )
            return
        if not slots.take():
            metrics.errors.labels(endpoint="stream", reason="busy").inc()
            await websocket.send_denial_response(
                JSONResponse(
                    {"error": f"all {settings.max_streams} streams are taken (--max-streams); retry later"},
                    status_code=503,
                    headers={"Retry-After": str(settings.retry_after_seconds)},
                )
            )
            return
        metrics.active_streams.inc()
        try:
            await websocket.accept()
            await run_stream(websocket, service, settings, metrics)
        finally:
            slots.give_back()
            metrics.active_streams.dec()

    routes = [
        Route("/", page),
        Route("/health", health),
        Route("/metrics", metrics_page),
        Route("/v1/transcribe", transcribe, methods=["POST"]),
        Route("/v1/classify", classify, methods=["POST"]),
        WebSocketRoute("/v1/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(BodyLimit, limit=settings.max_upload_bytes, metrics=metrics)]
    if settings.token is not None:
        middleware.insert(0, Middleware(TokenGuard, token=settings.token, metrics=metrics))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.metrics = metrics
    app.state.slots = slots
    return app


async def receive(websocket: WebSocket, timeout: float) -> str | bytes | None:
    """The next text or bytes message; ``None`` when the client has gone."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except asyncio.TimeoutError:
        raise ProtocolError(f"nothing received for {timeout:g} s; closing the stream") from None
    if message["type"] == "websocket.disconnect":
        return None
    return message["text"] if message.get("text") is not None else message.get("bytes")


async def run_stream(
    websocket: WebSocket, service: ModelService, settings: ServerSettings, metrics: ServerMetrics
) -> None:
    """Header, then audio until ``end``; any protocol error is sent as an error frame, then the close."""
    compute = audio_seconds = 0.0
    try:
        first = await receive(websocket, settings.idle_timeout_seconds)
        if first is None:
            return
        header: StreamHeader = parse_header(first)
        session = service.session(header.sample_rate)
        max_samples = int(settings.max_message_seconds * header.sample_rate)
        await websocket.send_json({"type": "ready", "sample_rate": service.sampling_rate})
        while True:
            message = await receive(websocket, settings.idle_timeout_seconds)
            if message is None:
                return  # the client vanished: the session is dropped with this frame
            start = time.perf_counter()
            if isinstance(message, bytes):
                samples = decode_samples(message, header, max_samples)
                audio_seconds += samples.shape[0] / header.sample_rate
                timed = await service.run(session.feed, samples)
            else:
                parse_control(message)
                timed = await service.run(session.finish)
            compute += timed.seconds
            for event in timed.value:
                await websocket.send_json({**event_message(event), "audio_seconds": round(audio_seconds, 3)})
            metrics.latency.labels(endpoint="stream").observe(time.perf_counter() - start)
            if isinstance(message, str):
                await websocket.send_json({"type": "done", "audio_seconds": round(audio_seconds, 3)})
                await websocket.close(1000)
                metrics.audio_seconds.labels(endpoint="stream").inc(audio_seconds)
                if audio_seconds > 0:
                    metrics.real_time_factor.labels(endpoint="stream").observe(compute / audio_seconds)
                return
    except ProtocolError as err:
        metrics.errors.labels(endpoint="stream", reason="protocol").inc()
        await close_with_error(websocket, str(err), code=1008)
    except WebSocketDisconnect:
        return
    except Exception as err:
        logger.exception("stream failed")
        metrics.errors.labels(endpoint="stream", reason="internal").inc()
        await close_with_error(websocket, f"internal error: {type(err).__name__}: {err}", code=1011)


async def close_with_error(websocket: WebSocket, message: str, code: int) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_json(error_message(message))
        await websocket.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client has gone already
