"""Fixtures of the gateway's tests.

The gateway's tests run in a sandbox of their own (database and vhost), so the
gateways they start (several, with different settings, some stopped and restarted)
never share a queue or a delivery table with gateways other tests may be running.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio

from pathways.sandbox import Sandbox
from shared.caller import PartnerKind
from tests.gateway.harness import EchoLog, GatewayUnderTest, Server, echo_app, gateway_settings


@pytest_asyncio.fixture(scope="session")
async def gw_sandbox() -> AsyncIterator[Sandbox]:
    box = Sandbox.new("gw")
    await box.create()
    try:
        yield box
    finally:
        if not os.environ.get("PATHWAYS_KEEP_SANDBOX"):
            await box.destroy()


@pytest_asyncio.fixture(scope="session")
async def echo_log() -> EchoLog:
    return EchoLog()


@pytest_asyncio.fixture(scope="session")
async def echo(gw_sandbox: Sandbox, echo_log: EchoLog) -> AsyncIterator[Server]:
    server = await Server(echo_app(gw_sandbox.config.internal_secret, echo_log)).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="session")
async def gateway(gw_sandbox: Sandbox, echo: Server) -> AsyncIterator[GatewayUnderTest]:
    """A gateway in front of the echo stand-in, with production webhook rules (https
    only, no private targets). It consumes no events and sends no webhooks: the
    webhook tests run gateways of their own."""
    generous = {"per_second": 1000, "burst": 10000}
    settings = gateway_settings(
        gw_sandbox,
        upstream=echo.url,
        run_consumer=False,
        run_webhook_dispatcher=False,
        rate_limits={kind.value: generous for kind in PartnerKind},
    )
    running = await GatewayUnderTest(gw_sandbox, settings).start()
    try:
        yield running
    finally:
        await running.stop()
