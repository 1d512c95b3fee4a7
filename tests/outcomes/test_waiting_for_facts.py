"""A claim posted a moment before the facts it rests on have reached the outcomes service
is kept ``submitted`` until they arrive (contract §8), or until its bounded wait ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest

from services.outcomes import waits
from shared.events.casework import ParticipantFactsConfirmed
from tests.outcomes.world import World
from tests.support.events import publish

pytestmark = pytest.mark.asyncio


async def _post(world: World, *args, client=None, **kwargs) -> dict:
    client = client or world.provider_client
    response = await client.post("/v1/outcome-claims", json=world.claim_body(*args, **kwargs))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "submitted"
    return response.json()


async def _status(world: World, claim_id: str) -> str:
    response = await world.provider_client.get(f"/v1/outcome-claims/{claim_id}")
    return response.json()["status"]


async def test_a_claim_before_its_employment_event_waits_then_is_validated(world: World) -> None:
    participant = await world.attach()
    episode = uuid.uuid4()
    claim = await _post(world, participant, "job_start", "2024-05-01", employment_id=episode)
    await asyncio.sleep(0.3)
    assert await _status(world, claim["id"]) == "submitted"  # not rejected for want of facts

    await publish(
        world.sandbox,
        world.employment_event(participant, date(2024, 5, 1), episode_id=episode, hours=25),
    )
    decided = await world.decided(claim["id"])
    assert decided["status"] == "validated"
    assert decided["decision"]["rules"]["facts_complete"] is True
    assert decided["decision"]["rules"]["checks"][3]["facts"]["hours_per_week"] == 25


async def test_a_claim_before_the_attachment_and_employment_waits_for_both(world: World) -> None:
    attached = world.attachment_event()
    participant = attached.participant_id
    episode = uuid.uuid4()
    claim = await _post(world, participant, "job_start", "2024-05-01", employment_id=episode)
    # The employment arrives first, then the attachment (casework's events may race).
    await publish(
        world.sandbox, world.employment_event(participant, date(2024, 5, 1), episode_id=episode)
    )
    await asyncio.sleep(0.3)
    assert await _status(world, claim["id"]) == "submitted"
    await publish(world.sandbox, attached)
    decided = await world.decided(claim["id"])
    assert decided["status"] == "validated"
    statement = await world.statement("2024-05")
    assert [
        line["kind"] for line in statement["lines"] if line["participant_id"] == str(participant)
    ] == ["job_start"]


async def test_a_sustained_claim_waits_for_its_job_starts_decision(world: World) -> None:
    participant = await world.attach()
    episode = uuid.uuid4()
    job_start = await _post(world, participant, "job_start", "2024-05-01", employment_id=episode)
    sustained = await _post(world, participant, "sustained_13", "2024-08-05")
    await asyncio.sleep(0.3)
    assert await _status(world, sustained["id"]) == "submitted"
    await publish(
        world.sandbox, world.employment_event(participant, date(2024, 5, 1), episode_id=episode)
    )
    assert (await world.decided(job_start["id"]))["status"] == "validated"
    decided = await world.decided(sustained["id"])
    assert decided["status"] == "validated", decided
    assert (
        decided["decision"]["rules"]["checks"][4]["facts"]["job_start_claim_id"]
        == (job_start["id"])
    )


async def test_after_the_bounded_wait_the_rules_decide_on_what_is_known(
    world: World, short_fact_wait: float
) -> None:
    participant = await world.attach()
    never_recorded = uuid.uuid4()
    claim = await _post(world, participant, "job_start", "2024-05-01", employment_id=never_recorded)
    stranger = await _post(world, uuid.uuid4(), "qualification", "2024-05-01")
    job = await world.decided(claim["id"], timeout=short_fact_wait + 10)
    assert job["status"] == "rejected"
    assert job["reasons"] == ["hours_below_minimum"]
    record = job["decision"]["rules"]
    assert record["facts_complete"] is False
    assert record["facts_missing"] == ["employment_episode"]

    unknown = await world.decided(stranger["id"], timeout=short_fact_wait + 10)
    assert unknown["reasons"] == ["not_attached"]
    assert unknown["decision"]["rules"]["facts_missing"] == ["attachment"]
    # Late facts change nothing once decided.
    await publish(
        world.sandbox,
        world.employment_event(participant, date(2024, 5, 1), episode_id=never_recorded),
    )
    await world.until_stored_episode(never_recorded)
    assert await _status(world, claim["id"]) == "rejected"


async def test_a_claim_whose_programme_is_unknown_is_not_decided_without_it(
    world: World, short_fact_wait: float
) -> None:
    late = World(world.sandbox, world.app)
    attached = late.attachment_event()
    await publish(world.sandbox, attached)
    await late.until_stored_participant(attached.participant_id)
    claim = await _post(late, attached.participant_id, "qualification", "2024-05-01")
    await asyncio.sleep(short_fact_wait + 0.6)
    await waits.decide_expired_once(world.app.runtime)  # a round past its deadline
    assert await _status(late, claim["id"]) == "submitted"
    # The definition arrives: the attachment accrues and the claim is decided.
    await late.define_programme()
    decided = await late.decided(claim["id"])
    assert decided["status"] == "validated"
    statement = await late.statement("2024-02")
    assert [line["kind"] for line in statement["lines"]] == ["attachment"]
    await late.close()


async def test_a_sustained_claim_is_decided_on_the_employment_casework_has_now(
    world: World,
) -> None:
    # The job has ended in casework, but its ended event has not reached outcomes yet:
    # deciding on what outcomes has heard would pay for weeks nobody worked.
    participant = await world.attach()
    job = await world.job_start(participant, date(2024, 5, 1))
    ended = world.employment_event(
        participant, date(2024, 5, 1), date(2024, 6, 25), episode_id=uuid.UUID(job["employment_id"])
    )
    world.record_in_casework(ended)
    claim = await _post(world, participant, "sustained_13", "2024-09-30")
    decided = await world.decided(claim["id"])
    assert decided["status"] == "rejected", decided
    assert decided["reasons"] == ["not_sustained"]
    rules = decided["decision"]["rules"]
    assert rules["facts_complete"] is True
    sustained = {c["rule"]: c for c in rules["checks"]}["not_sustained"]["facts"]
    assert sustained["covered_days"] == 56  # 1 May to 25 June: eight weeks
    assert str(claim["id"]) in {str(r.request_id) for r in world.facts_requests}
    statement = await world.statement("2024-09")
    assert [line["kind"] for line in statement["lines"]] == []


async def test_without_casework_s_answer_a_claim_is_decided_after_its_wait(
    world: World, short_fact_wait: float
) -> None:
    participant = await world.attach()
    await world.job_start(participant, date(2024, 5, 1))
    world.answering = False  # casework is down
    claim = await _post(world, participant, "sustained_13", "2024-09-30")
    # An answer that cannot vouch for the participant confirms nothing.
    await publish(
        world.sandbox,
        ParticipantFactsConfirmed(
            request_id=uuid.UUID(claim["id"]),
            participant_id=participant,
            known=False,
            programme=None,
            provider_id=None,
            episodes=[],
        ),
        producer="casework",
    )
    await asyncio.sleep(0.5)
    assert await _status(world, claim["id"]) == "submitted"
    decided = await world.decided(claim["id"], timeout=short_fact_wait + 10)
    # Decided on the episodes heard of, and saying what it lacked.
    assert decided["status"] == "validated"
    assert decided["decision"]["rules"]["facts_complete"] is False
    assert decided["decision"]["rules"]["facts_missing"] == ["current_employment"]
