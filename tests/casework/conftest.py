"""Fixtures of the casework tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.casework.support import Casework
from tests.support.apps import InProcessApps


@pytest_asyncio.fixture
async def casework(apps: InProcessApps, sandbox: Sandbox) -> AsyncIterator[Casework]:
    app = await apps.get("casework")
    # Events published before the consumer has declared and bound its queue would be
    # dropped by the exchange: wait until it is listening.
    assert app.runtime.consumer is not None
    await asyncio.wait_for(app.runtime.consumer.ready.wait(), timeout=30)
    world = Casework(app, sandbox)
    await world.start()
    yield world
    await world.close()


@pytest.fixture
def provider_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest_asyncio.fixture
async def provider(casework: Casework, provider_id: uuid.UUID):
    async with casework.provider(provider_id) as client:
        yield client


@pytest_asyncio.fixture
async def other_provider(casework: Casework):
    async with casework.provider() as client:
        yield client


@pytest_asyncio.fixture
async def office(casework: Casework):
    async with casework.office() as client:
        yield client


@pytest_asyncio.fixture
async def referrer(casework: Casework):
    async with casework.referrer() as client:
        yield client
