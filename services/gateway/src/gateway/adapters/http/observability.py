"""Prometheus metrics and one structured log line per HTTP request.

Labels use the route template (`/api/v1/sales/{sale_id}`), never the raw path, so ids do not
multiply the series; requests that match no route count under `route="<unmatched>"`.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gavel_kit.logging import get_logger

log = get_logger("gateway.access")

REQUESTS = Counter(
    "gavel_http_requests_total",
    "HTTP requests the gateway answered, by method, route and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "gavel_http_request_duration_seconds",
    "HTTP request latency (until the response is complete), by method, route and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

UNMATCHED = "<unmatched>"
# Probes and scrapes are counted but not logged at info: they would drown the log.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class ObservabilityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): sees the final status even for streamed responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route, str(status)).observe(elapsed)
            fields = {"method": method, "route": route, "path": scope.get("path", ""), "status": status}
            if route in QUIET_ROUTES and status < 500:
                log.debug("http", ms=round(elapsed * 1000, 3), **fields)
            else:
                log.info("http", ms=round(elapsed * 1000, 3), **fields)


def render_metrics() -> Response:
    """The Prometheus text exposition of this process's default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
