"""Referrals for a programme whose definition has not reached this service yet (§8 and
the issue): stored as ``received``, decided when the definition arrives, and rejected
as ``unknown_programme`` only after a bounded, configurable wait."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from pathways.sandbox import Sandbox
from services.referrals import lifecycle, store
from services.referrals.app import create_app
from tests.referrals.helpers import (
    ACCEPTED,
    STATUS_CHANGED,
    Partner,
    attached_event,
    dead_lettered_event_ids,
    define_programme,
    events_of,
    new_code,
    partner,
    programme_defined,
    statuses,
)
from tests.support.apps import RunningApp, service_settings
from tests.support.builders import referral_body
from tests.support.events import eventually, publish


@contextlib.asynccontextmanager
async def another_instance(sandbox: Sandbox, **settings: Any) -> AsyncIterator[RunningApp]:
    """A second referrals process on the same database, with its own settings. It does
    not consume (the session's instance owns the queue) nor relay (either relay may)."""
    app = create_app(
        service_settings(sandbox, "referrals", run_consumer=False, run_relay=False, **settings)
    )
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield RunningApp("referrals", app, sandbox.config.internal_secret)


@pytest_asyncio.fixture(scope="module")
async def impatient(sandbox: Sandbox) -> AsyncIterator[RunningApp]:
    """Waits only 0.2 s for an unknown programme's definition before storing the
    referral as received (the default is the platform's consistency wait)."""
    async with another_instance(sandbox, programme_wait_seconds=0.2) as app:
        yield app


def areas() -> tuple[uuid.UUID, dict[uuid.UUID, list[str]]]:
    provider = uuid.uuid4()
    return provider, {provider: ["Wigan", "Bolton"]}


async def until_status(partner: Partner, referral_id: str, status: str) -> dict:
    async def check() -> dict:
        current = await partner.referral(referral_id)
        assert current["status"] == status, current["status"]
        return current

    return await eventually(check)


async def test_a_referral_for_an_unknown_programme_waits_as_received_then_is_decided(
    sandbox: Sandbox, referrals_app: RunningApp, impatient: RunningApp
) -> None:
    jcp = partner(impatient, "jcp")
    code = new_code()
    response = await jcp.refer(referral_body(code))

    assert response.status_code == 201, response.text
    waiting = response.json()
    assert waiting["status"] == "received"
    assert statuses(waiting) == ["received"]
    assert (waiting["provider_id"], waiting["reasons"], waiting["duplicate_of"]) == (None, [], None)
    assert [e.payload["status"] for e in await events_of(impatient, waiting["id"])] == ["received"]

    provider, covered = areas()
    await publish(sandbox, programme_defined(code, covered))
    decided = await until_status(jcp.on(referrals_app), waiting["id"], "accepted")

    assert decided["provider_id"] == str(provider)
    assert statuses(decided) == ["received", "accepted"]
    events = await events_of(referrals_app, waiting["id"])
    assert [
        (e.type, e.payload.get("status"), e.payload.get("previous_status")) for e in events
    ] == [
        (STATUS_CHANGED, "received", None),
        (ACCEPTED, None, None),
        (STATUS_CHANGED, "accepted", "received"),
    ]


async def test_waiting_referrals_are_decided_oldest_first(
    sandbox: Sandbox, referrals_app: RunningApp, impatient: RunningApp
) -> None:
    code = new_code()
    first_partner, second_partner = partner(impatient, "jcp"), partner(impatient, "probation")
    first_body = referral_body(code)
    second_body = referral_body(code)
    second_body["person"] = {**first_body["person"], "nino": None}
    first = (await first_partner.refer(first_body)).json()
    second = (await second_partner.refer(second_body)).json()
    ineligible = (
        await first_partner.refer(referral_body(code, circumstances={"benefit": "PIP"}))
    ).json()
    assert {first["status"], second["status"], ineligible["status"]} == {"received"}

    _, covered = areas()
    await publish(sandbox, programme_defined(code, covered))

    reader = first_partner.on(referrals_app)
    assert (await until_status(reader, first["id"], "accepted"))["duplicate_of"] is None
    duplicate = await until_status(second_partner.on(referrals_app), second["id"], "duplicate")
    assert duplicate["duplicate_of"] == first["id"]
    rejected = await until_status(reader, ineligible["id"], "rejected")
    assert rejected["reasons"] == ["benefit_not_eligible"]


async def test_intake_waits_briefly_for_a_definition_on_its_way(
    sandbox: Sandbox, referrals_app: RunningApp, jcp: Partner
) -> None:
    # The session's instance waits the platform's consistency_wait_seconds (5 s).
    code = new_code()
    _, covered = areas()

    async def define_soon() -> None:
        await asyncio.sleep(0.3)
        await publish(sandbox, programme_defined(code, covered))

    response, _ = await asyncio.gather(jcp.refer(referral_body(code)), define_soon())
    assert response.status_code == 201
    assert response.json()["status"] == "accepted"


async def test_a_waiting_referral_may_be_withdrawn_and_stays_withdrawn(
    sandbox: Sandbox, referrals_app: RunningApp, impatient: RunningApp
) -> None:
    jcp = partner(impatient, "jcp")
    code = new_code()
    waiting = (await jcp.refer(referral_body(code))).json()
    response = await jcp.post(f"/v1/referrals/{waiting['id']}/withdraw", json={"reason": "error"})
    assert response.status_code == 200
    assert statuses(response.json()) == ["received", "withdrawn"]

    _, covered = areas()
    await define_programme(sandbox, referrals_app, covered, code=code)
    # A later referral shows the definition has been handled; the withdrawn one is untouched.
    later = (await jcp.on(referrals_app).refer(referral_body(code))).json()
    assert later["status"] == "accepted"
    assert (await jcp.referral(waiting["id"]))["status"] == "withdrawn"


async def test_a_retry_of_a_waiting_referral_is_answered_200(impatient: RunningApp) -> None:
    jcp = partner(impatient, "jcp")
    body = referral_body(new_code())
    first = await jcp.refer(body)
    again = await jcp.refer(body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "received"


async def test_an_attachment_before_the_decision_is_not_applied(
    sandbox: Sandbox, referrals_app: RunningApp, impatient: RunningApp
) -> None:
    jcp = partner(impatient, "jcp")
    waiting = (await jcp.refer(referral_body(new_code()))).json()
    [envelope] = await publish(sandbox, attached_event(waiting, uuid.uuid4()))

    async def dead_lettered() -> None:
        assert str(envelope.event_id) in await dead_lettered_event_ids(sandbox)

    await eventually(dead_lettered)
    assert (await jcp.referral(waiting["id"]))["status"] == "received"


async def test_the_sweep_decides_a_waiting_referral_whose_programme_is_known(
    referrals_app: RunningApp, impatient: RunningApp
) -> None:
    # As if the definition had been stored without deciding what waited for it.
    jcp = partner(impatient, "jcp")
    code = new_code()
    waiting = (await jcp.refer(referral_body(code))).json()
    provider = uuid.uuid4()
    async with referrals_app.runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(store.programmes).values(
                code=code,
                name="Stored only",
                eligible_benefits=["ESA"],
                min_age=18,
                max_age=66,
                providers=[{"partner_id": str(provider), "local_authorities": ["Wigan"]}],
            )
        )
    runtime = referrals_app.runtime
    assert runtime.outbox is not None
    settled = await lifecycle.settle_waiting(
        runtime.session_factory, runtime.outbox, unknown_after=timedelta(hours=1), batch=50
    )
    assert settled >= 1
    decided = await jcp.referral(waiting["id"])
    assert decided["status"] == "accepted"
    assert decided["provider_id"] == str(provider)


async def test_a_programme_still_unknown_after_the_deadline_is_rejected(
    sandbox: Sandbox, referrals_app: RunningApp
) -> None:
    async with another_instance(
        sandbox,
        programme_wait_seconds=0.1,
        unknown_programme_after_seconds=0.5,
        pending_sweep_seconds=0.1,
    ) as strict:
        jcp = partner(strict, "jcp")
        waiting = (await jcp.refer(referral_body(new_code()))).json()
        assert waiting["status"] == "received"
        rejected = await until_status(jcp, waiting["id"], "rejected")

    assert rejected["reasons"] == ["unknown_programme"]
    assert statuses(rejected) == ["received", "rejected"]
    last = (await events_of(referrals_app, waiting["id"]))[-1]
    assert (last.payload["status"], last.payload["reasons"]) == ("rejected", ["unknown_programme"])


async def test_a_referral_that_waited_for_its_programme_is_stamped_when_it_is_stored(
    sandbox: Sandbox, referrals_app: RunningApp, jcp: Partner
) -> None:
    """Polling from the last ``updated_at`` seen must find it. Stamped on arrival, it
    would carry a time before a referral stored while it waited, and a partner that saw
    that one would never list it."""
    _, covered = areas()
    known = await define_programme(sandbox, referrals_app, covered)
    code = new_code()

    async def refer_and_define_meanwhile() -> tuple[dict, dict]:
        waiting = asyncio.create_task(jcp.refer(referral_body(code)))
        await asyncio.sleep(0.3)
        meanwhile = (await jcp.refer(referral_body(known))).json()
        await publish(sandbox, programme_defined(code, covered))
        return (await waiting).json(), meanwhile

    waited, meanwhile = await refer_and_define_meanwhile()
    assert (waited["status"], meanwhile["status"]) == ("accepted", "accepted")
    response = await jcp.get("/v1/referrals", params={"updated_since": meanwhile["updated_at"]})
    assert response.status_code == 200
    assert waited["id"] in [item["id"] for item in response.json()["items"]]
