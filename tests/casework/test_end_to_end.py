"""Referrals and casework together, talking only through the broker: a referral accepted
by the referrals service is attached in casework, and the referral becomes `attached`."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import pytest_asyncio

from pathways.sandbox import Sandbox
from shared.events.gateway import ProgrammeDefined
from tests.casework.support import Casework, until_status
from tests.support.apps import InProcessApps, RunningApp
from tests.support.builders import programme_body, referral_body
from tests.support.events import eventually, publish


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


async def test_a_withdrawn_referral_cannot_be_attached_end_to_end(
    sandbox: Sandbox, referrals: RunningApp, casework: Casework
) -> None:
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
        referral_id = (await jcp.post("/v1/referrals", json=referral_body(code))).json()["id"]

        async def accepted() -> None:
            response = await jcp.get(f"/v1/referrals/{referral_id}")
            assert response.json()["status"] == "accepted"

        await eventually(accepted)
        withdrawn = await jcp.post(
            f"/v1/referrals/{referral_id}/withdraw", json={"reason": "moved away"}
        )
        assert withdrawn.status_code == 200, withdrawn.text

        await until_status(casework.app, uuid.UUID(referral_id), "withdrawn")
        response = await provider.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )
        assert response.status_code == 409, response.text
