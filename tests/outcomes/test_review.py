"""Claims resting only on the participant's word go to ``review``; the programme office
validates or rejects them (contract §4 decision endpoint)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest

from tests.outcomes.world import SELF_DECLARED, World
from tests.support.events import outbox_events

pytestmark = pytest.mark.asyncio


async def _in_review(world: World, type_: str = "qualification") -> tuple[uuid.UUID, dict]:
    participant = await world.attach()
    claim = await world.claim(participant, type_, "2024-05-01", evidence=SELF_DECLARED)
    assert claim["status"] == "review"
    assert claim["reasons"] == []
    return participant, claim


async def _lines(world: World, participant: uuid.UUID, period: str = "2024-05") -> list[dict]:
    statement = await world.statement(period)
    return [line for line in statement["lines"] if line["participant_id"] == str(participant)]


async def test_validating_a_claim_in_review_accrues_it(world: World) -> None:
    participant, claim = await _in_review(world)
    assert await _lines(world, participant) == []  # nothing accrues while in review
    response = await world.office_client.post(
        f"/v1/outcome-claims/{claim['id']}/decision",
        json={"decision": "validate", "reason": "certificate seen at the office"},
    )
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["status"] == "validated"
    assert decided["reasons"] == []
    record = decided["decision"]
    assert record["decided_by"] == "programme_office"
    assert record["programme_office"]["reason"] == "certificate seen at the office"
    assert record["programme_office"]["partner_id"] == str(world.office)
    assert record["rules"]["outcome"] == "review"  # why it went to review is kept
    assert (await world.provider_client.get(f"/v1/outcome-claims/{claim['id']}")).json() == decided
    lines = await _lines(world, participant)
    assert [(line["kind"], line["amount_pence"], line["claim_id"]) for line in lines] == [
        ("qualification", 15000, claim["id"])
    ]
    events = [
        e.payload
        for e in await outbox_events(world.app.runtime, "outcomes.claim.decided")
        if e.payload["claim_id"] == claim["id"]
    ]
    assert [(e["status"], e["decided_by"]) for e in events] == [
        ("review", "rules"),
        ("validated", "programme_office"),
    ]


async def test_rejecting_a_claim_in_review_accrues_nothing(world: World) -> None:
    participant, claim = await _in_review(world)
    response = await world.office_client.post(
        f"/v1/outcome-claims/{claim['id']}/decision",
        json={"decision": "reject", "reason": "no certificate"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert await _lines(world, participant) == []


async def test_only_a_claim_in_review_can_be_decided(world: World) -> None:
    participant = await world.attach()
    validated = await world.claim(participant, "qualification")
    rejected = await world.claim(participant, "education_start", evidence=[])
    waiting = await world.provider_client.post(
        "/v1/outcome-claims", json=world.claim_body(uuid.uuid4(), "qualification")
    )
    for claim_id in (validated["id"], rejected["id"], waiting.json()["id"]):
        response = await world.office_client.post(
            f"/v1/outcome-claims/{claim_id}/decision",
            json={"decision": "validate", "reason": "looks fine"},
        )
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
    # Deciding twice: the second is a conflict too.
    _, claim = await _in_review(world)
    url = f"/v1/outcome-claims/{claim['id']}/decision"
    first = await world.office_client.post(url, json={"decision": "reject", "reason": "no"})
    assert first.status_code == 200
    second = await world.office_client.post(url, json={"decision": "validate", "reason": "yes"})
    assert second.status_code == 409


async def test_two_decisions_at_once_one_wins(world: World) -> None:
    participant, claim = await _in_review(world)
    url = f"/v1/outcome-claims/{claim['id']}/decision"
    responses = await asyncio.gather(
        world.office_client.post(url, json={"decision": "validate", "reason": "a"}),
        world.office_client.post(url, json={"decision": "validate", "reason": "b"}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert len(await _lines(world, participant)) == 1


async def test_a_validated_job_start_from_review_lets_a_waiting_sustained_claim_pass(
    world: World,
) -> None:
    participant = await world.attach()
    episode = await world.employ(participant, date(2024, 5, 1))
    job_start = await world.claim(
        participant, "job_start", "2024-05-01", employment_id=episode, evidence=SELF_DECLARED
    )
    assert job_start["status"] == "review"
    response = await world.provider_client.post(
        "/v1/outcome-claims", json=world.claim_body(participant, "sustained_13", "2024-08-05")
    )
    sustained_id = response.json()["id"]
    await asyncio.sleep(0.3)
    waiting = await world.provider_client.get(f"/v1/outcome-claims/{sustained_id}")
    assert waiting.json()["status"] == "submitted"
    decided = await world.office_client.post(
        f"/v1/outcome-claims/{job_start['id']}/decision",
        json={"decision": "validate", "reason": "employer phoned"},
    )
    assert decided.status_code == 200
    sustained = await world.decided(sustained_id)
    assert sustained["status"] == "validated"


async def test_who_may_decide(world: World) -> None:
    _, claim = await _in_review(world)
    url = f"/v1/outcome-claims/{claim['id']}/decision"
    body = {"decision": "validate", "reason": "ok"}
    for client in (world.provider_client, world.client(uuid.uuid4(), "probation")):
        response = await client.post(url, json=body)
        assert response.status_code == 403
    missing = await world.office_client.post(
        f"/v1/outcome-claims/{uuid.uuid4()}/decision", json=body
    )
    assert missing.status_code == 404
    assert (await world.provider_client.get(f"/v1/outcome-claims/{claim['id']}")).json()[
        "status"
    ] == "review"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"decision": "approve", "reason": "ok"}, "decision"),
        ({"reason": "ok"}, "decision"),
        ({"decision": "validate"}, "reason"),
        ({"decision": "validate", "reason": "   "}, "reason"),
        ({"decision": "validate", "reason": 5}, "reason"),
        ({"decision": "validate", "reason": "x" * 2001}, "reason"),
        ({"decision": "validate", "reason": "ok", "amount": 1}, "amount"),
    ],
)
async def test_bad_decisions_are_422_and_change_nothing(world: World, body, field) -> None:
    _, claim = await _in_review(world)
    response = await world.office_client.post(
        f"/v1/outcome-claims/{claim['id']}/decision", json=body
    )
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await world.provider_client.get(f"/v1/outcome-claims/{claim['id']}")).json() == claim
