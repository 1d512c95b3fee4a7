"""Reporting's tests feed it hand-written histories straight onto the broker.

Other services' in-process apps (outcomes, casework) would react to those events in
the suite's shared sandbox and publish events of their own (an attachment accrual for
every attached participant, say) that reporting then counts. So reporting gets a
sandbox of its own, where it is the only consumer: the histories are all it sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.support.apps import InProcessApps, in_process_apps, sandbox_of_its_own


@pytest_asyncio.fixture(scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with sandbox_of_its_own("rep") as box:
        yield box


@pytest_asyncio.fixture(scope="session")
async def apps(sandbox: Sandbox) -> AsyncIterator[InProcessApps]:
    async with in_process_apps(sandbox) as registry:
        yield registry
