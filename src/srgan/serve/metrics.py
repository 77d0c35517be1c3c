"""`/metrics` in the Prometheus text format: upscale requests by status, refusals and failures by
reason, answer latency, and the queue (waiting, running, capacity), read when scraped. Each app has
its own registry, so several apps in one process (tests) do not mix their counts."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from srgan.serve.inference_queue import InferenceQueue

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue: InferenceQueue) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("srgan_upscale_requests", "Upscale requests answered, by HTTP status",
                                ["status"], registry=self.registry)
        self.errors = Counter("srgan_upscale_errors", "Upscale requests refused or failed, by reason",
                              ["reason"], registry=self.registry)
        self.latency = Histogram("srgan_upscale_seconds", "Seconds to answer an upscale request (any status)",
                                 buckets=_BUCKETS, registry=self.registry)
        for name, text, read in (
                ("srgan_queue_waiting", "Requests admitted and waiting for an inference thread", lambda: queue.waiting),
                ("srgan_queue_running", "Requests being upscaled now", lambda: queue.running),
                ("srgan_queue_capacity", "Requests that may be admitted at once (workers + queue)",
                 lambda: queue.capacity)):
            Gauge(name, text, registry=self.registry).set_function(read)

    def observe(self, status: int, seconds: float, reason: str | None = None) -> None:
        self.requests.labels(str(status)).inc()
        if reason is not None:
            self.errors.labels(reason).inc()
        self.latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
