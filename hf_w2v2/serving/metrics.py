"""Prometheus metrics of one server (``GET /metrics``), in a registry of its own.

Each app gets its own :class:`CollectorRegistry`, so two servers in one process (the tests)
never share counts.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)  # compute seconds per audio second


class ServerMetrics:
    """Requests, errors, active streams, latencies and real-time factors.

    ``endpoint`` labels are the route names (``transcribe``, ``classify``, ``stream``, ...);
    ``reason`` labels of errors are short words (``bad_audio``, ``protocol``, ``too_large``,
    ``unauthorized``, ``busy``, ``internal``).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hf_w2v2_requests", "Requests received (a stream counts once)", ["endpoint"], registry=self.registry
        )
        self.errors = Counter(
            "hf_w2v2_errors", "Requests or streams that failed", ["endpoint", "reason"], registry=self.registry
        )
        self.active_streams = Gauge("hf_w2v2_active_streams", "WebSocket streams open now", registry=self.registry)
        self.latency = Histogram(
            "hf_w2v2_latency_seconds",
            "Time to answer: a whole upload, or one streamed message (feed and send its results)",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "hf_w2v2_real_time_factor",
            "Model compute seconds per second of audio, per upload or per finished stream",
            ["endpoint"],
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "hf_w2v2_audio_seconds", "Seconds of audio processed", ["endpoint"], registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
