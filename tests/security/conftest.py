"""One platform for every security test: every service a process behind the real gateway.

It differs from the suite's ``platform`` in two settings only, both so the fuzzer can
go deep in bounded time: services wait a quarter of a second (not five) for an event
about an id they have not heard of (the fuzzer invents thousands), and the gateway's
rate limits are raised (a 429 would stop a fuzzed request before it reached a service).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.conftest import ARTIFACTS
from tests.security.world import Tenant, two_tenants
from tests.support.gateway import Gateway
from tests.support.platform import RunningPlatform, start_platform

GENEROUS = {"per_second": 1000, "burst": 5000}


@pytest_asyncio.fixture(scope="package")
async def secure_platform() -> AsyncIterator[RunningPlatform]:
    env = {
        "PATHWAYS_CONSISTENCY_WAIT_SECONDS": "0.25",
        "GATEWAY_RATE_LIMITS": json.dumps(
            {kind: GENEROUS for kind in ("jcp", "probation", "treatment", "provider")}
            | {"programme_office": GENEROUS}
        ),
    }
    async with start_platform(ARTIFACTS / "security-logs", "sec", env) as running:
        yield running


@pytest_asyncio.fixture(scope="package")
async def secure_gateway(secure_platform: RunningPlatform) -> AsyncIterator[Gateway]:
    gateway = Gateway(secure_platform.gateway_url, secure_platform.admin_token)
    try:
        yield gateway
    finally:
        await gateway.aclose()


@pytest_asyncio.fixture(scope="package")
async def tenants(secure_gateway: Gateway) -> tuple[Tenant, Tenant]:
    return await two_tenants(secure_gateway)
