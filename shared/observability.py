"""Metrics, request logging and the health endpoints every service exposes.

Each service process has its own Prometheus registry (so several apps can live in one
test process). Labels are route templates and event types, never raw paths or ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import bind_context, get_logger

log = get_logger("http")

REQUEST_ID_HEADER = "x-request-id"


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"service": service}
        self.request_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events_published = Counter(
            "events_published_total",
            "Events relayed from the outbox to the broker",
            ["type"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "events_consumed_total",
            "Events handled (or recognised as already handled)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.events_failed = Counter(
            "events_failed_total",
            "Event handling attempts that raised",
            ["type"],
            registry=self.registry,
        )
        self.events_dead_lettered = Counter(
            "events_dead_lettered_total",
            "Events moved to the dead-letter queue",
            ["type"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "outbox_backlog",
            "Outbox rows not yet published",
            registry=self.registry,
        )
        self.dead_letter_depth = Gauge(
            "dead_letter_queue_depth",
            "Messages waiting in this service's dead-letter queue",
            registry=self.registry,
        )
        self.service_info = Gauge(
            "pathways_service_info", "Service identity", list(labels), registry=self.registry
        )
        self.service_info.labels(**labels).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestContextMiddleware:
    """Request id, one structured log line and a latency sample per request.

    A plain ASGI middleware (not BaseHTTPMiddleware) so streaming bodies pass through
    untouched and the per-request cost stays small.
    """

    def __init__(self, app: ASGIApp, *, metrics: Callable[[], Metrics | None]) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, REQUEST_ID_HEADER) or uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with bind_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                metrics = self.metrics()
                if metrics is not None:
                    metrics.request_latency.labels(scope["method"], route, str(status)).observe(
                        elapsed
                    )
                if route not in ("/health", "/ready", "/metrics"):  # probes and scrapes: noise
                    log.info(
                        "request",
                        method=scope["method"],
                        route=route,
                        status=status,
                        ms=round(elapsed * 1000, 1),
                    )


def _header(scope: Scope, name: str) -> str | None:
    target = name.encode()
    for key, value in scope.get("headers", []):
        if key == target:
            return value.decode("latin-1")[:128]
    return None


ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def health_router(
    readiness: Callable[[Request], Awaitable[dict[str, bool]]],
    metrics: Callable[[Request], Metrics],
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/ready")
    async def ready(request: Request) -> Response:
        checks = await readiness(request)
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def prometheus(request: Request) -> Response:
        return Response(metrics(request).render(), media_type=CONTENT_TYPE_LATEST)

    return router
