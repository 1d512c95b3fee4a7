"""Each outcome type is paid once per participant (contract §4 ``duplicate_outcome``),
enforced by PostgreSQL: a partial unique index over the claims holding the slot."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from services.outcomes import store
from shared.db import create_session_factory
from tests.outcomes.world import SELF_DECLARED, World
from tests.support.events import publish

pytestmark = pytest.mark.asyncio

ROUNDS = 15


async def test_two_identical_claims_at_the_same_moment_one_proceeds(world: World) -> None:
    for _ in range(ROUNDS):
        participant = await world.attach()
        episode = await world.employ(participant, date(2024, 5, 1))
        body = world.claim_body(participant, "job_start", "2024-05-01", employment_id=episode)
        responses = await asyncio.gather(
            world.provider_client.post("/v1/outcome-claims", json=body),
            world.provider_client.post("/v1/outcome-claims", json=body),
        )
        assert [r.status_code for r in responses] == [201, 201]
        decided = [await world.decided(r.json()["id"]) for r in responses]
        outcomes = sorted((c["status"], tuple(c["reasons"])) for c in decided)
        assert outcomes == [("rejected", ("duplicate_outcome",)), ("validated", ())]
        statement = await world.statement("2024-05")
        paid = [
            line
            for line in statement["lines"]
            if line["participant_id"] == str(participant) and line["kind"] == "job_start"
        ]
        assert len(paid) == 1


async def test_a_pending_claim_holds_the_slot_and_a_rejected_one_frees_it(world: World) -> None:
    participant = await world.attach()
    rejected = await world.claim(participant, "qualification", evidence=[])
    assert rejected["reasons"] == ["missing_evidence"]
    # The rejected claim does not block a proper one.
    in_review = await world.claim(participant, "qualification", evidence=SELF_DECLARED)
    assert in_review["status"] == "review"
    # Review is pending: the slot is held.
    blocked = await world.claim(participant, "qualification")
    assert blocked["reasons"] == ["duplicate_outcome"]
    # The programme office rejects the reviewed claim: the slot is free again.
    response = await world.office_client.post(
        f"/v1/outcome-claims/{in_review['id']}/decision",
        json={"decision": "reject", "reason": "declaration not signed"},
    )
    assert response.status_code == 200
    retried = await world.claim(participant, "qualification")
    assert retried["status"] == "validated"
    again = await world.claim(participant, "qualification")
    assert again["reasons"] == ["duplicate_outcome"]
    # A different type, or a different participant, is not a duplicate.
    assert (await world.claim(participant, "education_start"))["status"] == "validated"
    other = await world.attach()
    assert (await world.claim(other, "qualification"))["status"] == "validated"


async def test_a_duplicate_arriving_before_the_facts_waits_for_them_too(world: World) -> None:
    attached = world.attachment_event()
    participant = attached.participant_id
    bodies = [world.claim_body(participant, "qualification", "2024-05-01", evidence=[])] * 2
    ids = []
    for body in bodies:
        response = await world.provider_client.post("/v1/outcome-claims", json=body)
        ids.append(response.json()["id"])
    await publish(world.sandbox, attached)
    first, second = [await world.decided(i) for i in ids]
    assert first["reasons"] == ["missing_evidence"]
    # Decided on the facts once they arrived: attached, so not not_attached.
    assert second["reasons"] == ["duplicate_outcome", "missing_evidence"]


async def _raw_claim(participant: uuid.UUID, provider: uuid.UUID, **values) -> dict:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "participant_id": participant,
        "provider_id": provider,
        "type": "job_start",
        "achieved_on": date(2024, 5, 1),
        "evidence": [],
        "status": "submitted",
        "submitted_at": now,
        "facts_deadline": now + timedelta(minutes=1),
        **values,
    }


async def test_the_database_itself_refuses_a_second_slot_holder(world: World) -> None:
    participant, provider = uuid.uuid4(), uuid.uuid4()
    engine = world.app.runtime.engine
    async with engine.begin() as conn:
        await conn.execute(
            insert(store.claims).values(await _raw_claim(participant, provider, holds_slot=True))
        )
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                insert(store.claims).values(
                    await _raw_claim(participant, provider, holds_slot=True, status="validated")
                )
            )
    # A rejected claim can never hold the slot.
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                insert(store.claims).values(
                    await _raw_claim(uuid.uuid4(), provider, holds_slot=True, status="rejected")
                )
            )


async def _insert_claim(
    factory, participant: uuid.UUID, provider: uuid.UUID, hold: asyncio.Event | None
) -> uuid.UUID | None:
    """Insert a claim the way the API does, but without the participant lock; with
    ``hold``, keep the transaction open a moment after inserting (and say so)."""
    async with factory() as session:
        now = datetime.now(UTC)
        row = await store.insert_claim(
            session,
            store.NewClaim(
                id=uuid.uuid4(),
                participant_id=participant,
                provider_id=provider,
                type="qualification",
                achieved_on=date(2024, 5, 1),
                employment_id=None,
                evidence=[],
                submitted_at=now,
                facts_deadline=now + timedelta(minutes=1),
            ),
        )
        if hold is not None:
            hold.set()
            await asyncio.sleep(0.05)  # the other insert now waits on the index
        await session.commit()
        return row.duplicate_of


async def test_concurrent_inserts_without_any_lock_still_give_one_slot(world: World) -> None:
    """The index, not the participant lock, is the guarantee: two transactions inserting
    at once, neither holding the lock, end with one slot holder and one duplicate."""
    factory = create_session_factory(world.app.runtime.engine)
    for _ in range(ROUNDS):
        participant, provider = uuid.uuid4(), uuid.uuid4()
        inserted = asyncio.Event()

        async def after_first(event: asyncio.Event, p: uuid.UUID, q: uuid.UUID):
            await event.wait()
            return await _insert_claim(factory, p, q, None)

        results = await asyncio.gather(
            _insert_claim(factory, participant, provider, inserted),
            after_first(inserted, participant, provider),
        )
        assert results[0] is None
        assert results[1] is not None
        async with world.app.runtime.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(store.claims.c.id, store.claims.c.holds_slot).where(
                        store.claims.c.participant_id == participant
                    )
                )
            ).all()
        holders = [r for r in rows if r.holds_slot]
        assert len(rows) == 2 and len(holders) == 1
        assert results[1] == holders[0].id
