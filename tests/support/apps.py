"""Services running in the test process against the run's sandbox database and vhost.

Each service is started at most once per test session (its consumer is then the only
one on its queue), with its full lifespan: engine, broker, outbox relay, consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pathways.sandbox import Sandbox
from shared.caller import PartnerKind
from shared.service import ServiceRuntime
from shared.settings import PlatformSettings
from tests.support.signing import GatewaySigner

# Short retry delays keep failure paths quick to test.
TEST_RETRY_DELAYS_MS = [50, 100, 200]
# In-process apps, process platforms and benchmarks share one PostgreSQL (100 connections).
TEST_POOL_SIZE = 4


def test_platform_settings(sandbox: Sandbox, **overrides: Any) -> PlatformSettings:
    values: dict[str, Any] = {
        "amqp_url": sandbox.config.amqp_url,
        "internal_secret": sandbox.config.internal_secret,
        "retry_delays_ms": TEST_RETRY_DELAYS_MS,
        "outbox_poll_seconds": 0.1,
        "log_format": "json",
    }
    values.update(overrides)
    return PlatformSettings(**values)


def service_settings(sandbox: Sandbox, service: str, **overrides: Any) -> Any:
    module = importlib.import_module(f"services.{service}.settings")
    settings_cls = getattr(module, f"{service.capitalize()}Settings")
    values: dict[str, Any] = {
        "database_url": sandbox.config.database_url(service),
        "port": sandbox.config.ports[service],
        "database_pool_size": TEST_POOL_SIZE,
        "platform": test_platform_settings(sandbox),
    }
    if service == "gateway":
        values["admin_token"] = sandbox.config.admin_token
        for other in ("referrals", "casework", "outcomes", "reporting"):
            values[f"{other}_url"] = sandbox.config.url(other)
    values.update(overrides)
    return settings_cls(**values)


@dataclass
class RunningApp:
    service: str
    app: FastAPI
    secret: str

    @property
    def runtime(self) -> ServiceRuntime:
        return self.app.state.runtime

    def client(
        self,
        partner_id: uuid.UUID | None = None,
        kind: PartnerKind | str | None = None,
        **kwargs: Any,
    ) -> httpx.AsyncClient:
        """A client calling the app in-process; signed as the gateway would if a caller is given."""
        auth = GatewaySigner(self.secret, partner_id, kind) if partner_id and kind else None
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=f"http://{self.service}",
            auth=auth,
            **kwargs,
        )


@dataclass
class InProcessApps:
    sandbox: Sandbox
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    running: dict[str, RunningApp] = field(default_factory=dict)

    async def get(self, service: str) -> RunningApp:
        if service not in self.running:
            module = importlib.import_module(f"services.{service}.app")
            app = module.create_app(service_settings(self.sandbox, service))
            await self.stack.enter_async_context(
                LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
            )
            running = RunningApp(service, app, self.sandbox.config.internal_secret)
            if running.runtime.consumer is not None:
                # Queue declared and bound: an event published from now on is not lost.
                await asyncio.wait_for(running.runtime.consumer.ready.wait(), 30)
            self.running[service] = running
        return self.running[service]

    async def close(self) -> None:
        await self.stack.aclose()


@contextlib.asynccontextmanager
async def sandbox_of_its_own(label: str) -> AsyncIterator[Sandbox]:
    """A database, roles and vhost for one group of tests, removed afterwards
    (kept when ``PATHWAYS_KEEP_SANDBOX`` is set, to look inside after a failure)."""
    box = Sandbox.new(label)
    await box.create()
    try:
        yield box
    finally:
        if not os.environ.get("PATHWAYS_KEEP_SANDBOX"):
            await box.destroy()


@contextlib.asynccontextmanager
async def in_process_apps(sandbox: Sandbox) -> AsyncIterator[InProcessApps]:
    registry = InProcessApps(sandbox)
    try:
        yield registry
    finally:
        await registry.close()
