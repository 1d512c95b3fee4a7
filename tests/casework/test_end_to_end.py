"""Referrals and casework together, talking only through the broker: a referral accepted
by the referrals service is attached in casework, and the referral becomes `attached`;
an attachment and a withdrawal of one referral never both succeed."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import httpx
import pytest_asyncio
from sqlalchemy import select

from pathways.sandbox import Sandbox
from services.casework.store.tables import attachment_requests, participants
from shared.events.gateway import ProgrammeDefined
from tests.casework.support import Casework, until_status
from tests.support.apps import InProcessApps, RunningApp
from tests.support.builders import programme_body, referral_body
from tests.support.events import eventually, publish


async def participant_of(casework: Casework, referral_id: str) -> uuid.UUID | None:
    query = select(participants.c.id).where(participants.c.referral_id == uuid.UUID(referral_id))
    async with casework.app.runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


async def attachment_request_of(casework: Casework, referral_id: str) -> str | None:
    """The state of casework's request to referrals to attach the referral, if it made one."""
    table = attachment_requests
    query = select(table.c.state).where(table.c.referral_id == uuid.UUID(referral_id))
    async with casework.app.runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


@pytest_asyncio.fixture
async def referrals(apps: InProcessApps) -> RunningApp:
    app = await apps.get("referrals")
    assert app.runtime.consumer is not None
    await asyncio.wait_for(app.runtime.consumer.ready.wait(), timeout=30)
    return app


async def test_attachment_marks_the_referral_attached_through_the_broker(
    sandbox: Sandbox, referrals: RunningApp, casework: Casework
) -> None:
    provider_id = uuid.uuid4()
    code = f"e2e-{secrets.token_hex(4)}"
    definition = programme_body(
        code, [{"partner_id": str(provider_id), "local_authorities": ["Wigan", "Bolton"]}]
    )
    await publish(sandbox, ProgrammeDefined.model_validate(definition), producer="gateway")

    async with (
        referrals.client(uuid.uuid4(), "jcp") as jcp,
        referrals.client(provider_id, "provider") as provider_on_referrals,
        casework.app.client(provider_id, "provider") as provider,
    ):
        posted = await jcp.post("/v1/referrals", json=referral_body(code))
        assert posted.status_code == 201, posted.text
        referral_id = posted.json()["id"]

        async def accepted() -> dict:
            response = await provider_on_referrals.get(f"/v1/referrals/{referral_id}")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "accepted"
            return response.json()

        referral = await eventually(accepted)
        assert referral["provider_id"] == str(provider_id)

        # The provider has seen it accepted: attaching succeeds (§8), with no help from
        # the test in getting the acceptance to casework.
        attached = await provider.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )
        assert attached.status_code == 201, attached.text
        assert attached.json()["programme"] == code
        assert attached.json()["person"]["given_name"] == "Sam"

        async def marked_attached() -> dict:
            response = await jcp.get(f"/v1/referrals/{referral_id}")
            assert response.json()["status"] == "attached"
            return response.json()

        referral = await eventually(marked_attached)
        assert [h["status"] for h in referral["history"]][-2:] == ["accepted", "attached"]

        # ...and casework hears of that too, so a retry is still recognised.
        again = await provider.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )
        assert again.status_code == 200
        assert again.json()["id"] == attached.json()["id"]


# --- an attachment and a withdrawal, one after the other or at once -------------------------


@dataclass
class Parties:
    """A programme's referrer (on referrals) and provider (on casework)."""

    code: str
    jcp: httpx.AsyncClient
    provider: httpx.AsyncClient

    async def accepted_referral(self) -> str:
        posted = await self.jcp.post("/v1/referrals", json=referral_body(self.code))
        assert posted.status_code == 201, posted.text
        referral_id = posted.json()["id"]

        async def accepted() -> None:
            assert (await self.history(referral_id))[-1] == "accepted"

        await eventually(accepted)
        return referral_id

    async def history(self, referral_id: str) -> list[str]:
        referral = (await self.jcp.get(f"/v1/referrals/{referral_id}")).json()
        return [h["status"] for h in referral["history"]]

    def attach(self, referral_id: str) -> Awaitable[httpx.Response]:
        return self.provider.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )

    def withdraw(self, referral_id: str) -> Awaitable[httpx.Response]:
        return self.jcp.post(f"/v1/referrals/{referral_id}/withdraw", json={"reason": "moved"})


@pytest_asyncio.fixture
async def parties(
    sandbox: Sandbox, referrals: RunningApp, casework: Casework
) -> AsyncIterator[Parties]:
    provider_id = uuid.uuid4()
    code = f"e2e-{secrets.token_hex(4)}"
    definition = programme_body(
        code, [{"partner_id": str(provider_id), "local_authorities": ["Wigan"]}]
    )
    await publish(sandbox, ProgrammeDefined.model_validate(definition), producer="gateway")
    async with (
        referrals.client(uuid.uuid4(), "jcp") as jcp,
        casework.app.client(provider_id, "provider") as provider,
    ):
        yield Parties(code, jcp, provider)


async def test_a_referral_casework_knows_is_withdrawn_is_refused_without_asking(
    parties: Parties, casework: Casework
) -> None:
    """Once casework's copy says withdrawn, the attachment is 409 at once, and no request
    goes to referrals."""
    referral_id = await parties.accepted_referral()
    withdrawn = await parties.withdraw(referral_id)
    assert withdrawn.status_code == 200, withdrawn.text
    await until_status(casework.app, uuid.UUID(referral_id), "withdrawn")

    response = await parties.attach(referral_id)

    assert response.status_code == 409, response.text
    assert "withdrawn" in response.json()["detail"]
    assert await attachment_request_of(casework, referral_id) is None
    assert await participant_of(casework, referral_id) is None


async def test_an_attachment_posted_right_after_a_withdrawal_is_refused(
    parties: Parties, casework: Casework
) -> None:
    """The withdrawal was answered 200, so the referral stays withdrawn: an attachment
    posted before casework has heard of the withdrawal is 409, and nothing accrues."""
    for _ in range(5):
        referral_id = await parties.accepted_referral()
        await until_status(casework.app, uuid.UUID(referral_id), "accepted")
        withdrawn = await parties.withdraw(referral_id)
        assert withdrawn.status_code == 200, withdrawn.text

        response = await parties.attach(referral_id)

        assert response.status_code == 409, response.text
        assert "withdrawn" in response.json()["detail"]
        assert (await parties.history(referral_id))[-1] == "withdrawn"
        assert await participant_of(casework, referral_id) is None


async def test_a_withdrawal_posted_right_after_an_attachment_is_refused(
    parties: Parties,
) -> None:
    for _ in range(5):
        referral_id = await parties.accepted_referral()
        attached = await parties.attach(referral_id)
        assert attached.status_code == 201, attached.text

        withdrawn = await parties.withdraw(referral_id)

        assert withdrawn.status_code == 409, withdrawn.text
        assert await parties.history(referral_id) == ["received", "accepted", "attached"]


async def test_an_attachment_and_a_withdrawal_at_once_leave_one_outcome(
    parties: Parties, casework: Casework
) -> None:
    for _ in range(5):
        referral_id = await parties.accepted_referral()
        await until_status(casework.app, uuid.UUID(referral_id), "accepted")
        attached, withdrawn = await asyncio.gather(
            parties.attach(referral_id), parties.withdraw(referral_id)
        )

        codes = (attached.status_code, withdrawn.status_code)
        assert codes in {(201, 409), (409, 200)}, codes
        final = "attached" if attached.status_code == 201 else "withdrawn"
        assert await parties.history(referral_id) == ["received", "accepted", final]
        participant = await participant_of(casework, referral_id)
        assert (participant is not None) == (final == "attached")
