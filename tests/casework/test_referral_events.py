"""What casework learns from the referrals service's events, in any order, and what it
publishes in turn (no personal data)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import orjson
from sqlalchemy import select

from services.casework.store.tables import referrals
from tests.casework.support import (
    REFERRED_ON,
    Casework,
    accepted_event,
    programme_code,
    status_event,
    until_person_known,
    until_status,
)
from tests.support.events import outbox_events, publish


async def known(casework: Casework, referral_id: uuid.UUID):
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(select(referrals).where(referrals.c.referral_id == referral_id))
        ).one()


async def test_an_attached_status_arriving_before_the_acceptance_is_kept(
    casework: Casework, provider_id
) -> None:
    referral_id, programme = uuid.uuid4(), programme_code()
    now = datetime.now(UTC)
    await publish(
        casework.sandbox,
        status_event(
            referral_id,
            "attached",
            provider_id=provider_id,
            programme=programme,
            referred_on=REFERRED_ON,
            changed_at=now,
        ),
    )
    await until_status(casework.app, referral_id, "attached")
    await publish(
        casework.sandbox,
        accepted_event(referral_id, provider_id, programme=programme, referred_on=REFERRED_ON),
        status_event(
            referral_id,
            "accepted",
            provider_id=provider_id,
            programme=programme,
            referred_on=REFERRED_ON,
            changed_at=now - timedelta(minutes=5),
        ),
        status_event(
            referral_id,
            "received",
            provider_id=None,
            programme=programme,
            referred_on=REFERRED_ON,
            changed_at=now - timedelta(minutes=6),
        ),
    )
    await until_person_known(casework.app, referral_id)
    row = await known(casework, referral_id)
    assert row.status == "attached"
    assert row.provider_id == provider_id
    assert row.person["given_name"] == "Sam"
    assert row.circumstances["benefit"] == "ESA"


async def test_a_later_status_of_the_same_stage_wins(casework: Casework, provider_id) -> None:
    referral_id, programme = uuid.uuid4(), programme_code()
    now = datetime.now(UTC)
    later = status_event(
        referral_id,
        "withdrawn",
        provider_id=provider_id,
        programme=programme,
        referred_on=REFERRED_ON,
        changed_at=now,
    )
    earlier = status_event(
        referral_id,
        "declined",
        provider_id=provider_id,
        programme=programme,
        referred_on=REFERRED_ON,
        changed_at=now - timedelta(seconds=1),
    )
    await publish(casework.sandbox, later)
    await until_status(casework.app, referral_id, "withdrawn")
    await publish(casework.sandbox, earlier)
    # A marker event published after the stale one: once it is applied, so is the other.
    marker = uuid.uuid4()
    await publish(
        casework.sandbox,
        status_event(
            marker, "received", provider_id=None, programme=programme, referred_on=REFERRED_ON
        ),
    )
    await until_status(casework.app, marker, "received")
    assert (await known(casework, referral_id)).status == "withdrawn"


async def test_a_redelivered_event_changes_nothing(casework: Casework, provider_id) -> None:
    referral_id, programme = uuid.uuid4(), programme_code()
    accepted = accepted_event(
        referral_id, provider_id, programme=programme, referred_on=REFERRED_ON
    )
    envelopes = await publish(casework.sandbox, accepted)
    await until_status(casework.app, referral_id, "accepted")
    before = await known(casework, referral_id)
    # The very same envelope (same event_id) again, as the broker may redeliver it.
    connection = await aio_pika.connect(casework.sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(
            aio_pika.Message(body=envelopes[0].to_bytes(), message_id=str(envelopes[0].event_id)),
            routing_key=envelopes[0].type,
        )
    marker = uuid.uuid4()
    await publish(
        casework.sandbox,
        status_event(
            marker, "received", provider_id=None, programme=programme, referred_on=REFERRED_ON
        ),
    )
    await until_status(casework.app, marker, "received")
    assert await known(casework, referral_id) == before


async def test_casework_events_carry_no_personal_data(
    casework: Casework, provider, provider_id
) -> None:
    participant = await casework.participant(provider, provider_id)
    pid = participant["id"]
    person = participant["person"]
    await provider.post(
        f"/v1/participants/{pid}/assessments",
        json={"assessed_on": "2024-02-20", "kind": "initial", "barriers": {"housing": 5}},
    )
    job = await provider.post(
        f"/v1/participants/{pid}/employment",
        json={"employer": "Acme", "started_on": "2024-05-01", "hours_per_week": 30},
    )
    await provider.post(
        f"/v1/participants/{pid}/employment/{job.json()['id']}/end",
        json={"ended_on": "2024-06-01"},
    )
    await provider.post(
        f"/v1/participants/{pid}/exit", json={"left_on": "2024-07-01", "reason": "completed"}
    )

    mine = [
        e
        for e in await outbox_events(casework.app.runtime)
        if e.payload.get("participant_id") == pid
    ]
    assert sorted(e.type for e in mine) == [
        "casework.assessment.recorded",
        "casework.employment.ended",
        "casework.employment.started",
        "casework.participant.attached",
        "casework.participant.attachment_requested",
        "casework.participant.exited",
    ]
    text = orjson.dumps([e.payload for e in mine]).decode()
    for value in (person["given_name"], person["family_name"], person["nino"], person["phone"]):
        assert value not in text
    assert "Acme" not in text  # the employer's name is casework's record, not an event's
    # One aggregate (the participant), so consumers get them in order.
    async with casework.app.runtime.engine.connect() as conn:
        table = casework.app.runtime.outbox.table
        rows = await conn.execute(
            select(table.c.aggregate_id).where(table.c.event_id.in_([e.event_id for e in mine]))
        )
        assert {r.aggregate_id for r in rows} == {pid}


async def test_nul_characters_in_a_persons_details_do_not_block_the_referral(
    casework: Casework, provider, provider_id
) -> None:
    """jsonb cannot store NUL; the acceptance must still land so the referral can be
    attached (the characters are dropped)."""
    referral_id, programme = uuid.uuid4(), programme_code()
    casework.referrals.announced.add(referral_id)
    event = accepted_event(referral_id, provider_id, programme=programme, referred_on=REFERRED_ON)
    event = event.model_copy(
        update={"person": event.person.model_copy(update={"given_name": "Sa\x00m"})}
    )
    await publish(casework.sandbox, event)
    await until_status(casework.app, referral_id, "accepted")
    assert (await known(casework, referral_id)).person["given_name"] == "Sam"
    response = await provider.post(
        "/v1/participants",
        json={"referral_id": str(referral_id), "attached_on": "2024-02-20", "key_worker": "kw"},
    )
    assert response.status_code == 201
