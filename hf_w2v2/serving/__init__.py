"""The ``hf-w2v2 serve`` server: HTTP uploads, WebSocket streaming, a web page, metrics.

The layer above the jobs and below the command line: it wires a model folder
(:mod:`hf_w2v2.inference` for CTC models, :mod:`hf_w2v2.classify.inference` for classifiers)
into a Starlette app (:mod:`.app`) run by uvicorn (:mod:`.server`). The wire protocol of
``/v1/stream`` is :mod:`.protocol`; :mod:`.client` is its Python client (used by
``examples/stream_client.py``, the tests and ``bench/bench_streaming.py``). See docs/serving.md.
"""

from hf_w2v2.lazy import lazy_namespace

_NAMES = {
    "ServerSettings": "hf_w2v2.serving.settings",
    "ModelService": "hf_w2v2.serving.service",
    "create_app": "hf_w2v2.serving.app",
    "serve": "hf_w2v2.serving.server",
    "running_server": "hf_w2v2.serving.server",
    "SendSettings": "hf_w2v2.serving.client",
    "stream_file": "hf_w2v2.serving.client",
    "transcribe_file": "hf_w2v2.serving.client",
}
__getattr__, __dir__ = lazy_namespace(__name__, _NAMES)
__all__ = sorted(_NAMES)
