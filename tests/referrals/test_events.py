"""Events for every state change, carrying what consumers need and no personal data
where the contract says so (§8; shared/events/referrals.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest

from pathways.sandbox import Sandbox
from shared.events.envelope import Envelope, parse_payload
from tests.referrals.helpers import ACCEPTED, STATUS_CHANGED, Partner, Programme, events_of
from tests.support.builders import referral_body

STATUS_CHANGED_FIELDS = {
    "referral_id",
    "external_ref",
    "programme",
    "source",
    "referrer_id",
    "provider_id",
    "status",
    "previous_status",
    "reasons",
    "duplicate_of",
    "referred_on",
    "local_authority",
    "benefit",
    "gender",
    "age_band",
    "changed_at",
    "sequence",
}

SECRET_PERSON = {
    "given_name": "Philippa",
    "family_name": "Quixotic-Zebedee",
    "date_of_birth": "1979-11-23",
    "nino": "JT987654B",
    "postcode": "BL1 9ZZ",
    "local_authority": "Bolton",
    "gender": "other",
    "disability": True,
    "phone": "07700 987654",
}
SECRET_NOTES = "Recently released; housing is a worry"


def personal_values() -> list[str]:
    return [
        SECRET_PERSON["given_name"],
        SECRET_PERSON["family_name"],
        SECRET_PERSON["date_of_birth"],
        SECRET_PERSON["nino"],
        "BL19ZZ",
        SECRET_PERSON["postcode"],
        SECRET_PERSON["phone"],
        "987654",
        SECRET_NOTES,
    ]


async def test_an_accepted_referral_publishes_received_accepted_then_status_changed(
    jcp: Partner, programme: Programme
) -> None:
    referral = (await jcp.refer(referral_body(programme.code))).json()
    events = await events_of(jcp.app, referral["id"])

    assert [(e.type, e.payload.get("status")) for e in events] == [
        (STATUS_CHANGED, "received"),
        (ACCEPTED, None),
        (STATUS_CHANGED, "accepted"),
    ]
    for event in events:
        parse_payload(event)  # every payload is valid against its published schema
        assert event.producer == "referrals"
    received, accepted, became_accepted = (e.payload for e in events)
    assert received["previous_status"] is None
    assert received["provider_id"] is None
    assert became_accepted["previous_status"] == "received"
    assert became_accepted["provider_id"] == str(programme.provider)
    assert became_accepted["referrer_id"] == str(jcp.id)
    assert became_accepted["source"] == "jcp"
    assert became_accepted["external_ref"] == referral["external_ref"]
    assert became_accepted["referred_on"] == "2024-02-03"
    assert became_accepted["benefit"] == "ESA"
    assert became_accepted["local_authority"] == "Wigan"
    assert became_accepted["gender"] == "female"
    assert became_accepted["age_band"] == "35-49"  # born 1981-05-17, 42 on 2024-02-03
    assert accepted["provider_id"] == str(programme.provider)
    assert accepted["referred_on"] == "2024-02-03"


async def test_status_changed_never_carries_personal_data(
    jcp: Partner, provider: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code, notes=SECRET_NOTES)
    body["person"] = dict(SECRET_PERSON)
    referral = (await jcp.refer(body)).json()
    await provider.post(
        f"/v1/referrals/{referral['id']}/decline", json={"reason": "Philippa did not attend"}
    )
    changes = await events_of(jcp.app, referral["id"], STATUS_CHANGED)

    assert [e.payload["status"] for e in changes] == ["received", "accepted", "declined"]
    for event in changes:
        assert set(event.payload) == STATUS_CHANGED_FIELDS
        text = orjson.dumps(event.model_dump(mode="json")).decode()
        for value in [*personal_values(), "did not attend"]:
            assert value not in text, value


async def test_only_the_accepted_event_carries_the_person_for_casework(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code, notes=SECRET_NOTES)
    body["person"] = dict(SECRET_PERSON)
    referral = (await jcp.refer(body)).json()
    [accepted] = await events_of(jcp.app, referral["id"], ACCEPTED)

    assert accepted.payload["person"] == {**SECRET_PERSON, "nino": "JT987654B"}
    assert accepted.payload["circumstances"] == body["circumstances"]
    # Notes are for the provider to read through the API, not to travel in events.
    assert SECRET_NOTES not in orjson.dumps(accepted.payload).decode()


@pytest.mark.parametrize(
    ("date_of_birth", "band"),
    [
        ("2005-02-03", "18-24"),  # 19
        ("1999-02-04", "18-24"),  # 24
        ("1999-02-03", "25-34"),  # 25
        ("1989-02-04", "25-34"),  # 34
        ("1974-02-04", "35-49"),  # 49
        ("1974-02-03", "50+"),  # 50
        ("1960-01-01", "50+"),
        ("2008-01-01", None),  # 16: rejected for age, still reported without a band
    ],
)
async def test_age_band_is_the_age_on_referred_on(
    jcp: Partner, programme: Programme, date_of_birth: str, band: str | None
) -> None:
    body = referral_body(programme.code, person={"date_of_birth": date_of_birth})
    referral = (await jcp.refer(body)).json()
    changes = await events_of(jcp.app, referral["id"], STATUS_CHANGED)
    assert {e.payload["age_band"] for e in changes} == {band}


async def test_a_rejected_referral_publishes_its_reasons_and_no_person(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(
        programme.code, circumstances={"benefit": "JSA"}, person={"local_authority": "York"}
    )
    referral = (await jcp.refer(body)).json()
    events = await events_of(jcp.app, referral["id"])
    assert [e.type for e in events] == [STATUS_CHANGED, STATUS_CHANGED]
    assert events[1].payload["status"] == "rejected"
    assert events[1].payload["reasons"] == ["outside_area"]
    assert events[1].payload["provider_id"] is None


async def test_a_self_referral_is_published_with_source_self(
    provider: Partner, programme: Programme
) -> None:
    referral = (await provider.refer(referral_body(programme.code))).json()
    changes = await events_of(provider.app, referral["id"], STATUS_CHANGED)
    assert {e.payload["source"] for e in changes} == {"self"}
    assert {e.payload["referrer_id"] for e in changes} == {str(provider.id)}


@contextlib.asynccontextmanager
async def listening(sandbox: Sandbox, pattern: str) -> AsyncIterator[asyncio.Queue[Envelope]]:
    """A throw-away queue bound to the event exchange, as a consumer would bind one."""
    received: asyncio.Queue[Envelope] = asyncio.Queue()
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=pattern)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            await received.put(Envelope.from_bytes(message.body))

        await queue.consume(on_message)
        yield received


async def test_events_reach_the_broker_in_order(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    async with listening(sandbox, "referrals.referral.*") as received:
        referral = (await jcp.refer(referral_body(programme.code))).json()
        await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json={"reason": "sent twice"})
        mine: list[Envelope] = []
        async with asyncio.timeout(15):
            while len(mine) < 4:
                envelope = await received.get()
                if envelope.payload.get("referral_id") == referral["id"]:
                    mine.append(envelope)
    assert [(e.type, e.payload.get("status")) for e in mine] == [
        (STATUS_CHANGED, "received"),
        (ACCEPTED, None),
        (STATUS_CHANGED, "accepted"),
        (STATUS_CHANGED, "withdrawn"),
    ]
    # Received and accepted share an instant; their place in the history orders them.
    history = [entry["status"] for entry in (await jcp.referral(referral["id"]))["history"]]
    changes = [e.payload for e in mine if e.type == STATUS_CHANGED]
    assert {c["sequence"]: c["status"] for c in changes} == dict(enumerate(history, start=1))
    assert changes[0]["changed_at"] == changes[1]["changed_at"]
