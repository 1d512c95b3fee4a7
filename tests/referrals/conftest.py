"""Fixtures for the referrals tests: the service in-process, a fresh programme per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.referrals.helpers import Partner, Programme, define_programme, partner
from tests.support.apps import InProcessApps, RunningApp


@pytest_asyncio.fixture(scope="session")
async def referrals_app(apps: InProcessApps) -> RunningApp:
    app = await apps.get("referrals")
    # apps.get waits for the broker connection, not for the queue to be bound; an event
    # published before the binding exists would be dropped by the exchange.
    assert app.runtime.consumer is not None
    await asyncio.wait_for(app.runtime.consumer.ready.wait(), timeout=30)
    return app


@pytest_asyncio.fixture
async def programme(sandbox: Sandbox, referrals_app: RunningApp) -> Programme:
    """A programme defined by event (as the gateway publishes it), with two providers."""
    provider, other_provider = uuid.uuid4(), uuid.uuid4()
    code = await define_programme(
        sandbox,
        referrals_app,
        {provider: ["Wigan", "Bolton"], other_provider: ["Manchester"]},
    )
    return Programme(code, provider, other_provider)


@pytest.fixture
def new_partner(referrals_app: RunningApp) -> Callable[[str], Partner]:
    return lambda kind: partner(referrals_app, kind)


@pytest.fixture
def jcp(new_partner: Callable[[str], Partner]) -> Partner:
    return new_partner("jcp")


@pytest.fixture
def probation(new_partner: Callable[[str], Partner]) -> Partner:
    return new_partner("probation")


@pytest.fixture
def office(new_partner: Callable[[str], Partner]) -> Partner:
    return new_partner("programme_office")


@pytest.fixture
def provider(referrals_app: RunningApp, programme: Programme) -> Partner:
    """The provider covering Wigan and Bolton in ``programme``."""
    return Partner(referrals_app, programme.provider, "provider")


@pytest.fixture
def other_provider(referrals_app: RunningApp, programme: Programme) -> Partner:
    """The provider covering Manchester in ``programme``."""
    return Partner(referrals_app, programme.other_provider, "provider")
