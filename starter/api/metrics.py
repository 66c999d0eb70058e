"""Prometheus metrics: alerts received by source and outcome, request latency, incidents opened.

Each app has its own registry, so several apps (tests, benchmark) never share counters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Ingest endpoints by path: their rejections count as alerts received with a bad outcome.
INGEST_SOURCES = {
    "/v2/enqueue": "pagerduty",
    "/alerts/alertmanager": "alertmanager",
    "/alerts/grafana": "grafana",
    "/alerts": "generic",
}

_REJECTION_OUTCOMES = {
    401: "unauthorized",
    403: "unauthorized",
    413: "too_large",
    429: "throttled",
    503: "unavailable",
}


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "firewatch_alerts_received",
            "Alerts received, by source and outcome (opened, joined, resolved, ignored;"
            " rejected requests count once each: rejected, unauthorized, too_large,"
            " throttled, unavailable)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.incidents_opened = Counter(
            "firewatch_incidents_opened",
            "Incidents opened through the API (a new incident workflow was started)",
            ["source"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "firewatch_http_request_duration_seconds",
            "HTTP request latency until the response started, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight = Gauge(
            "firewatch_http_requests_in_flight",
            "HTTP requests being handled",
            registry=self.registry,
        )

    def alert(self, source: str, outcome: str, count: int = 1) -> None:
        self.alerts.labels(source=source, outcome=outcome).inc(count)


class MetricsMiddleware:
    """Times every request and counts rejected ingest requests."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        responded = False

        async def send_wrapper(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start" and not responded:
                responded = True
                self._observe(scope, int(message["status"]), started)
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not responded:  # it becomes a 500 further out
                self._observe(scope, 500, started)
            raise
        finally:
            self.metrics.in_flight.dec()

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.latency.labels(
            method=scope.get("method", ""), route=template, status=str(status)
        ).observe(time.perf_counter() - started)
        source = INGEST_SOURCES.get(scope.get("path", ""))
        if source is not None and status >= 400:
            outcome = _REJECTION_OUTCOMES.get(status, "rejected" if status < 500 else "error")
            self.metrics.alert(source, outcome)


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.ctx.metrics.registry
    # In a thread: the incident collectors read the database at scrape time, and on the
    # event loop a scrape would hold up every alert the API is taking in meanwhile.
    body = await asyncio.to_thread(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
