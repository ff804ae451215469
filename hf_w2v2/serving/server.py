"""Running the app with uvicorn: in the foreground (``hf-w2v2 serve``) or in a thread (tests, bench)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 30.0  # a thread-run server that is not up by then has failed


def uvicorn_config(app: ASGIApp, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """uvicorn settings of every run: the ``websockets`` (sans-I/O) protocol, no access log (it shows ``?token=``)."""
    return uvicorn.Config(
        app, host=host, port=port, ws="websockets-sansio", access_log=False, log_level=log_level, lifespan="off"
    )


def serve(app: ASGIApp, host: str = LOOPBACK, port: int = 8000) -> None:
    """Serve ``app`` until interrupted (Ctrl-C)."""
    uvicorn.Server(uvicorn_config(app, host, port)).run()


@contextmanager
def running_server(app: ASGIApp, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields ``http://127.0.0.1:PORT``, stops it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, LOOPBACK, port, log_level))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="hf-w2v2-server")
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the test server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        sock.close()
