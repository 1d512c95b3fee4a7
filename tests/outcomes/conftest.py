"""Fixtures for the outcomes service's tests: the running app and a little world of facts
(a programme, providers, participants, jobs) fed to it as casework and the gateway would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.outcomes.world import World
from tests.support.apps import InProcessApps, RunningApp


@pytest_asyncio.fixture
async def outcomes(apps: InProcessApps) -> RunningApp:
    app = await apps.get("outcomes")
    # Events published before the queue is bound would be dropped by the broker.
    assert app.runtime.consumer is not None
    await asyncio.wait_for(app.runtime.consumer.ready.wait(), timeout=30)
    return app


@pytest_asyncio.fixture
async def world(sandbox: Sandbox, outcomes: RunningApp) -> AsyncIterator[World]:
    w = World(sandbox, outcomes)
    await w.answer_facts_requests()
    await w.define_programme()
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
def short_fact_wait(outcomes: RunningApp) -> Iterator[float]:
    """Claims wait 1.5 s (not a minute) for facts that have not arrived."""
    settings = outcomes.runtime.settings
    saved = (settings.claim_facts_wait_seconds, settings.claim_wait_poll_seconds)
    settings.claim_facts_wait_seconds = 1.5
    settings.claim_wait_poll_seconds = 0.2
    try:
        yield 1.5
    finally:
        settings.claim_facts_wait_seconds, settings.claim_wait_poll_seconds = saved
