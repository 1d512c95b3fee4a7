"""Referrals, casework and outcomes together, talking only through the broker: a job
start claimed the moment casework records the job is decided on that job (§8), the
attachment and the job start accrue, and the statement shows both."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import pytest_asyncio

from pathways.sandbox import Sandbox
from shared.events.gateway import ProgrammeDefined
from tests.support.apps import InProcessApps, RunningApp
from tests.support.builders import (
    employment_body,
    job_start_claim_body,
    programme_body,
    referral_body,
)
from tests.support.events import eventually, publish


async def _consuming(apps: InProcessApps, service: str) -> RunningApp:
    app = await apps.get(service)
    assert app.runtime.consumer is not None
    await asyncio.wait_for(app.runtime.consumer.ready.wait(), timeout=30)
    return app


@pytest_asyncio.fixture
async def services(apps: InProcessApps, outcomes: RunningApp) -> dict[str, RunningApp]:
    return {
        "referrals": await _consuming(apps, "referrals"),
        "casework": await _consuming(apps, "casework"),
        "outcomes": outcomes,
    }


async def test_a_job_start_claimed_as_soon_as_the_job_is_recorded(
    sandbox: Sandbox, services: dict[str, RunningApp]
) -> None:
    provider_id, office_id = uuid.uuid4(), uuid.uuid4()
    code = f"e2e-{secrets.token_hex(4)}"
    definition = programme_body(
        code, [{"partner_id": str(provider_id), "local_authorities": ["Wigan"]}]
    )
    await publish(sandbox, ProgrammeDefined.model_validate(definition), producer="gateway")

    referrals, casework, outcomes = (
        services["referrals"],
        services["casework"],
        services["outcomes"],
    )
    async with (
        referrals.client(uuid.uuid4(), "jcp") as jcp,
        referrals.client(provider_id, "provider") as provider_on_referrals,
        casework.client(provider_id, "provider") as provider,
        outcomes.client(provider_id, "provider") as claimant,
        outcomes.client(office_id, "programme_office") as office,
    ):
        posted = await jcp.post("/v1/referrals", json=referral_body(code))
        assert posted.status_code == 201, posted.text
        referral_id = posted.json()["id"]

        async def accepted() -> None:
            response = await provider_on_referrals.get(f"/v1/referrals/{referral_id}")
            assert response.json()["status"] == "accepted"

        await eventually(accepted)
        attached = await provider.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )
        assert attached.status_code == 201, attached.text
        participant_id = attached.json()["id"]
        job = await provider.post(
            f"/v1/participants/{participant_id}/employment",
            json=employment_body(
                employer="Wigan Warehousing", hours_per_week=30, weekly_earnings_pence=36000
            ),
        )
        assert job.status_code == 201, job.text

        # No waiting for the events: the claim goes in at once.
        claim = await claimant.post(
            "/v1/outcome-claims",
            json=job_start_claim_body(participant_id, job.json()["id"]),
        )
        assert claim.status_code == 201, claim.text

        async def validated() -> dict:
            response = await claimant.get(f"/v1/outcome-claims/{claim.json()['id']}")
            assert response.json()["status"] == "validated", response.json()
            return response.json()

        decided = await eventually(validated, timeout=20)
        assert decided["programme"] == code

        async def statement(period: str) -> dict:
            response = await office.get(
                "/v1/payments/statement",
                params={"programme": code, "period": period, "provider_id": str(provider_id)},
            )
            assert response.status_code == 200, response.text
            return response.json()

        february = await eventually(lambda: _has_lines(statement, "2024-02", 1))
        assert [(line["kind"], line["amount_pence"]) for line in february["lines"]] == [
            ("attachment", 30000)
        ]
        may = await statement("2024-05")
        assert [(line["kind"], line["claim_id"]) for line in may["lines"]] == [
            ("job_start", decided["id"])
        ]
        assert may["total_pence"] == 120000

        # The job ends after eight weeks, and a sustained claim goes in at once: it is
        # decided on the ended job, not on the ongoing one outcomes had heard of.
        ended = await provider.post(
            f"/v1/participants/{participant_id}/employment/{job.json()['id']}/end",
            json={"ended_on": "2024-06-25"},
        )
        assert ended.status_code == 200, ended.text
        sustained = await claimant.post(
            "/v1/outcome-claims",
            json={
                "participant_id": participant_id,
                "type": "sustained_13",
                "achieved_on": "2024-09-30",
                "evidence": [{"kind": "payslip", "reference": "PS-9", "dated": "2024-09-27"}],
            },
        )
        assert sustained.status_code == 201, sustained.text

        async def sustained_decided() -> dict:
            response = await claimant.get(f"/v1/outcome-claims/{sustained.json()['id']}")
            assert response.json()["status"] != "submitted"
            return response.json()

        decided = await eventually(sustained_decided, timeout=20)
        assert (decided["status"], decided["reasons"]) == ("rejected", ["not_sustained"])
        assert decided["decision"]["rules"]["facts_complete"] is True
        assert (await statement("2024-09"))["lines"] == []


async def _has_lines(statement, period: str, count: int) -> dict:
    body = await statement(period)
    assert len(body["lines"]) == count
    return body
