"""Composition root shared by every service: one function turns a service's parts into
a FastAPI app whose lifespan owns the database engine, the broker connection, the
outbox relay and the event consumer.

A service passes what is its own (settings, routers, outbox and inbox tables, the
events it consumes, any background loops); nothing here knows about referrals,
claims or reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.broker import Broker
from shared.consumer import EventConsumer, Subscription
from shared.db import create_engine, create_session_factory
from shared.errors import install_problem_handlers
from shared.logging import configure_logging, get_logger
from shared.observability import Metrics, RequestContextMiddleware, health_router
from shared.outbox import Outbox, OutboxRelay, asyncpg_dsn
from shared.settings import ServiceSettings

log = get_logger(__name__)

BackgroundTask = Callable[["ServiceRuntime"], Awaitable[None]]


@dataclass
class ServiceRuntime:
    """Everything a running service process holds; reachable as ``app.state.runtime``."""

    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    broker: Broker
    metrics: Metrics
    outbox: Outbox | None
    relay: OutboxRelay | None = None
    consumer: EventConsumer | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceParts:
    settings: ServiceSettings
    title: str
    routers: Sequence[APIRouter] = ()
    outbox_table: Table | None = None
    inbox_table: Table | None = None
    subscriptions: Sequence[Subscription] = ()
    background: Sequence[BackgroundTask] = ()
    # Extra setup/teardown of the service's own, run inside the lifespan.
    on_startup: Callable[[ServiceRuntime], Awaitable[None]] | None = None
    on_shutdown: Callable[[ServiceRuntime], Awaitable[None]] | None = None
    description: str = ""
    openapi_url: str | None = "/openapi.json"


def build_service_app(parts: ServiceParts) -> FastAPI:
    settings = parts.settings
    name = settings.service_name
    configure_logging(
        service=name, level=settings.platform.log_level, fmt=settings.platform.log_format
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await _start(parts)
        app.state.runtime = runtime
        _tune_garbage_collector()
        try:
            yield
        finally:
            await _stop(parts, runtime)

    app = FastAPI(
        title=parts.title,
        description=parts.description,
        lifespan=lifespan,
        openapi_url=parts.openapi_url,
        docs_url="/docs" if parts.openapi_url else None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=lambda: getattr(getattr(app.state, "runtime", None), "metrics", None),
    )
    app.include_router(health_router(_readiness, lambda r: r.app.state.runtime.metrics))
    for router in parts.routers:
        app.include_router(router)
    return app


async def _start(parts: ServiceParts) -> ServiceRuntime:
    settings = parts.settings
    name = settings.service_name
    engine = create_engine(
        settings.database_url.get_secret_value(),
        schema=settings.db_schema,
        pool_size=settings.database_pool_size,
    )
    broker = Broker(
        settings.platform.amqp_url.get_secret_value(),
        exchange=settings.platform.exchange,
        queue_type=settings.platform.queue_type,
        name=f"pathways-{name}",
    )
    metrics = Metrics(name)
    outbox = Outbox(parts.outbox_table, producer=name) if parts.outbox_table is not None else None
    runtime = ServiceRuntime(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        broker=broker,
        metrics=metrics,
        outbox=outbox,
    )
    runtime.tasks.append(asyncio.create_task(broker.run(), name=f"{name}-broker"))
    if outbox is not None and settings.run_relay:
        runtime.relay = OutboxRelay(
            engine=engine,
            table=outbox.table,
            broker=broker,
            metrics=metrics,
            dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
            poll_seconds=settings.platform.outbox_poll_seconds,
        )
        runtime.tasks.append(_supervised(runtime.relay.run, f"{name}-relay"))
    if parts.subscriptions and parts.inbox_table is not None and settings.run_consumer:
        runtime.consumer = EventConsumer(
            service=name,
            broker=broker,
            session_factory=runtime.session_factory,
            inbox=parts.inbox_table,
            subscriptions=list(parts.subscriptions),
            metrics=metrics,
            retry_delays_ms=settings.platform.retry_delays_ms,
            batch_size=settings.platform.consumer_batch_size,
            linger_seconds=settings.platform.consumer_linger_seconds,
        )
        runtime.tasks.append(_supervised(runtime.consumer.run, f"{name}-consumer"))
    if parts.on_startup is not None:
        await parts.on_startup(runtime)
    for task in parts.background:
        runtime.tasks.append(_supervised(lambda t=task: t(runtime), f"{name}-{task.__name__}"))
    log.info("service started", port=settings.port)
    return runtime


async def _stop(parts: ServiceParts, runtime: ServiceRuntime) -> None:
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if parts.on_shutdown is not None:
        await parts.on_shutdown(runtime)
    await runtime.broker.close()
    await runtime.engine.dispose()
    log.info("service stopped")


def _tune_garbage_collector() -> None:
    """Fewer, cheaper collections: what exists once the service has started (modules,
    apps, caches) lives as long as the process, so it is frozen out of every later
    collection, and the youngest generation is collected after 50,000 allocations,
    not 700 (each request allocates thousands of short-lived objects; collecting them
    every few requests cost several percent of a busy service's CPU)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _supervised(run: Callable[[], Awaitable[None]], name: str) -> asyncio.Task[None]:
    """Run a long-lived loop, restarting it if it ever dies of something unexpected."""

    async def loop() -> None:
        delay = 0.5
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception(
                    "background task crashed; restarting",
                    task=name,
                    error=type(exc).__name__,
                    exc_info=exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    return asyncio.create_task(loop(), name=name)


async def _readiness(request: Request) -> dict[str, bool]:
    runtime: ServiceRuntime = request.app.state.runtime
    database = False
    try:
        async with asyncio.timeout(2), runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            database = True
    except Exception:
        database = False
    return {"database": database, "broker": runtime.broker.connected}
