"""Prometheus metrics: requests by route and status, latency, predictions by digit, and the
writes waiting in the outbox.

With several uvicorn workers each worker is its own process. When `PROMETHEUS_MULTIPROC_DIR`
is set (`run_server` sets it for more than one worker), every worker writes its samples to
files there and `/metrics`, whichever worker answers it, adds up all of them.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitrec.schemas import PredictionPublic

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"  # one label for every unknown path, so fuzzing can't grow series
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Metric objects are declarations: in multiprocess mode they must be module globals.
REQUESTS = Counter(
    "digitrec_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY_S = Histogram(
    "digitrec_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer.",
    ["method", "route"],
    # A prediction takes a few milliseconds: resolve 1-50 ms finely.
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
PREDICTIONS = Counter(
    "digitrec_predictions_total",
    "Predictions answered, by model and digit (`none`: the reader gave no digit).",
    ["model", "digit"],
)
UNLOGGED = Counter(
    "digitrec_predictions_queued_total",
    "Predictions answered while the database was down (their rows wait in the outbox).",
)


PENDING_WRITES = Gauge(
    "digitrec_outbox_pending_writes",
    "Writes waiting in the outbox for the database (every process sharing the outbox).",
    # Each worker counts the same shared outbox: the latest count is the true one.
    multiprocess_mode="mostrecent",
)


def record_outbox_pending(pending: int) -> None:
    """Set the number of writes waiting in the outbox (refreshed by /ready and /metrics)."""
    PENDING_WRITES.set(pending)


def record_prediction(prediction: PredictionPublic) -> None:
    """Count one answered prediction."""
    digit = "none" if prediction.prediction is None else str(prediction.prediction)
    PREDICTIONS.labels(prediction.model, digit).inc()
    if not prediction.logged:
        UNLOGGED.inc()


def render_metrics() -> tuple[bytes, str]:
    """The text exposition of every metric, summed over workers in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Count and time every HTTP request, labelled by its route template, not its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            _refresh_outbox_pending(scope.get("app"))
        start = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The router stores the matched route in the scope; its path is the template.
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY_S.labels(method, template).observe(time.perf_counter() - start)


def _refresh_outbox_pending(app: Any) -> None:
    """Count the outbox just before /metrics answers (a read of a few .count files)."""
    service = getattr(getattr(app, "state", None), "service", None)
    if service is not None:
        with contextlib.suppress(OSError):  # a metric must never fail the scrape
            record_outbox_pending(service.outbox.count())
