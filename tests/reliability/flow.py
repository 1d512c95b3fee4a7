"""The partner traffic the reliability tests drive through the gateway."""

from __future__ import annotations

from typing import Any

import httpx

from tests.reliability.conftest import Programme
from tests.support.builders import employment_body, job_start_claim_body, referral_body
from tests.support.events import eventually

SETTLED = {"accepted", "rejected", "duplicate"}


async def refer(client: httpx.AsyncClient, programme: str, *, eligible: bool = True) -> str:
    body = referral_body(programme)
    if not eligible:
        body["circumstances"]["benefit"] = "none"  # rejected: benefit_not_eligible
    response = await client.post("/v1/referrals", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def statuses(client: httpx.AsyncClient, ids: list[str]) -> dict[str, str]:
    seen = {}
    for referral_id in ids:
        response = await client.get(f"/v1/referrals/{referral_id}")
        assert response.status_code == 200, response.text
        seen[referral_id] = response.json()["status"]
    return seen


async def wait_settled(
    client: httpx.AsyncClient, ids: list[str], timeout: float = 60
) -> dict[str, str]:
    async def settled() -> dict[str, str]:
        seen = await statuses(client, ids)
        pending = {i: s for i, s in seen.items() if s not in SETTLED | {"attached"}}
        assert not pending, pending
        return seen

    return await eventually(settled, timeout=timeout, interval=0.3)


async def attach_and_employ(client: httpx.AsyncClient, referral_id: str) -> tuple[str, str]:
    """Attach (waiting until casework has heard of the acceptance) and record a job."""

    async def attached() -> str:
        response = await client.post(
            "/v1/participants",
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw"},
        )
        assert response.status_code in (200, 201), response.text
        return response.json()["id"]

    participant_id = await eventually(attached, timeout=60, interval=0.3)
    job = await client.post(
        f"/v1/participants/{participant_id}/employment",
        json=employment_body(),
    )
    assert job.status_code == 201, job.text
    return participant_id, job.json()["id"]


async def claim_job_start(client: httpx.AsyncClient, participant_id: str, episode_id: str) -> str:
    response = await client.post(
        "/v1/outcome-claims",
        json=job_start_claim_body(participant_id, episode_id),
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def wait_claims_decided(
    client: httpx.AsyncClient, ids: list[str], timeout: float = 60
) -> dict[str, str]:
    async def decided() -> dict[str, str]:
        seen = {}
        for claim_id in ids:
            response = await client.get(f"/v1/outcome-claims/{claim_id}")
            assert response.status_code == 200, response.text
            seen[claim_id] = response.json()["status"]
        pending = {i: s for i, s in seen.items() if s == "submitted"}
        assert not pending, pending
        return seen

    return await eventually(decided, timeout=timeout, interval=0.3)


async def wait_report(
    programme: Programme, expected: dict[str, Any], timeout: float = 60
) -> dict[str, Any]:
    """Poll the performance report until its counts are exactly ``expected``."""
    async with programme.office.client() as office:

        async def matches() -> dict[str, Any]:
            response = await office.get(
                "/v1/reports/performance", params={"programme": programme.code}
            )
            assert response.status_code == 200, response.text
            row = response.json()["rows"][0]
            assert {k: row[k] for k in expected} == expected
            return row

        return await eventually(matches, timeout=timeout, interval=0.5)
