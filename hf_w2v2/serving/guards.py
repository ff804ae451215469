"""ASGI middleware run before any route: the bearer token and the request body limit.

Both are plain ASGI (no ``BaseHTTPMiddleware``), so they also see WebSocket handshakes and
never buffer a body.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hf_w2v2.serving.metrics import ServerMetrics


def request_token(scope: Scope) -> str | None:
    """The bearer token of a request: ``Authorization: Bearer T``, else the ``token`` query parameter.

    Browsers cannot set headers on a WebSocket, so the web page passes ``?token=``.
    """
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class TokenGuard:
    """401 for every HTTP request and WebSocket handshake without the server's bearer token."""

    def __init__(self, app: ASGIApp, token: str, metrics: ServerMetrics) -> None:
        self.app, self.token, self.metrics = app, token.encode(), metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = request_token(scope)
        if given is not None and hmac.compare_digest(given.encode(), self.token):
            await self.app(scope, receive, send)
            return
        self.metrics.errors.labels(endpoint=scope["path"].strip("/") or "page", reason="unauthorized").inc()
        response = JSONResponse(
            {"error": "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        if scope["type"] == "http" or "websocket.http.response" in scope.get("extensions", {}):
            await response(scope, receive, send)  # on a handshake, Starlette sends it as a denial response
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes the limit."""


class BodyLimit:
    """413 for a request body over ``limit`` bytes: at once from ``Content-Length``, else while it streams in."""

    def __init__(self, app: ASGIApp, limit: int, metrics: ServerMetrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.errors.labels(endpoint=scope["path"].strip("/"), reason="too_large").inc()
        limit_mb = self.limit / (1024 * 1024)
        response = JSONResponse(
            {"error": f"request body over the {limit_mb:g} MiB limit (--max-upload-mb)"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
