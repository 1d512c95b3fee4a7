"""The gateway service's FastAPI app: ``uvicorn services.gateway.app:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from services.gateway import api, events, store
from services.gateway.audit import AuditLog
from services.gateway.auth import KeyCache
from services.gateway.limits import RateLimiter
from services.gateway.openapi import openapi_builder
from services.gateway.proxy import GatewayMetrics, GatewayMiddleware, GatewayState, make_upstreams
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import WebhookDispatcher
from shared.outbox import asyncpg_dsn
from shared.service import ServiceParts, ServiceRuntime, build_service_app


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    async def on_startup(runtime: ServiceRuntime) -> None:
        metrics = GatewayMetrics(runtime.metrics.registry)
        runtime.extras["gateway"] = GatewayState(
            settings=settings,
            secret=settings.platform.internal_secret.get_secret_value(),
            admin_token=settings.admin_token.get_secret_value().encode(),
            keys=KeyCache(
                runtime.engine,
                ttl=settings.key_cache_ttl_seconds,
                negative_ttl=settings.key_negative_cache_seconds,
                max_entries=settings.key_cache_max_entries,
            ),
            limiter=RateLimiter(settings.rate_limits),
            audit=AuditLog(
                runtime.engine,
                flush_seconds=settings.audit_flush_seconds,
                batch_size=settings.audit_batch_size,
                buffer_max=settings.audit_buffer_max,
                pending_gauge=metrics.audit_pending,
            ),
            upstreams=make_upstreams(settings),
            metrics=metrics,
        )
        runtime.extras["webhooks"] = WebhookDispatcher(runtime.engine, settings, metrics)

    async def on_shutdown(runtime: ServiceRuntime) -> None:
        state: GatewayState | None = runtime.extras.get("gateway")
        if state is not None:
            await state.audit.close()  # in-flight calls have finished: write their rows
            await state.close()

    async def key_listener(runtime: ServiceRuntime) -> None:
        state: GatewayState = runtime.extras["gateway"]
        await state.keys.listen(asyncpg_dsn(settings.database_url.get_secret_value()))

    async def audit_writer(runtime: ServiceRuntime) -> None:
        await runtime.extras["gateway"].audit.run()

    async def webhook_dispatcher(runtime: ServiceRuntime) -> None:
        await runtime.extras["webhooks"].run()

    app = build_service_app(
        ServiceParts(
            settings=settings,
            title="Pathways gateway",
            description=(
                "The only door partners use: authentication, tenancy, routing, rate limits, "
                "audit and webhooks."
            ),
            routers=[api.router],
            outbox_table=store.outbox,
            inbox_table=store.inbox,
            subscriptions=events.SUBSCRIPTIONS,
            background=[key_listener, audit_writer]
            + ([webhook_dispatcher] if settings.run_webhook_dispatcher else []),
            on_startup=on_startup,
            on_shutdown=on_shutdown,
        )
    )

    def state() -> GatewayState | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.extras.get("gateway") if runtime is not None else None

    # Innermost of the user middleware: inside the request-id/logging middleware, so
    # every forwarded call is logged and timed under its route template.
    app.user_middleware.append(Middleware(GatewayMiddleware, state=state))
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]
    return app
