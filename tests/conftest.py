"""Fixtures shared by the whole suite.

Every run gets its own sandbox (database, one role per service, RabbitMQ vhost),
removed at the end. In-process service apps share that sandbox; the process-level
platform (every service started as ``make run`` starts it) gets a sandbox of its own,
so two sets of consumers never compete for one queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.support.apps import InProcessApps, in_process_apps, sandbox_of_its_own
from tests.support.platform import RunningPlatform, start_platform

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest_asyncio.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with sandbox_of_its_own("t") as box:
        yield box


@pytest_asyncio.fixture(scope="session")
async def apps(sandbox: Sandbox) -> AsyncIterator[InProcessApps]:
    async with in_process_apps(sandbox) as registry:
        yield registry


@pytest_asyncio.fixture(scope="session")
async def platform() -> AsyncIterator[RunningPlatform]:
    """Every service as a real process behind the real gateway, in a sandbox of its own."""
    async with start_platform(ARTIFACTS / "platform-logs") as running:
        yield running


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
