"""`POST /v1/participants` (contract §3): attaching an accepted referral."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.casework.store.tables import participants
from shared.events.casework import AttachmentRequested
from tests.casework.support import (
    REFERRED_ON,
    Casework,
    accepted_event,
    programme_code,
    status_event,
    today,
    until_person_known,
    until_status,
)
from tests.support.events import eventually, outbox_events, publish


def body(referral_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "referral_id": str(referral_id),
        "attached_on": "2024-02-20",
        "key_worker": "kw-17",
    }
    values.update(overrides)
    return values


async def participant_count(casework: Casework, referral_id: uuid.UUID) -> int:
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count()).where(participants.c.referral_id == referral_id)
            )
        ).scalar_one()


async def test_attaching_an_accepted_referral_creates_the_participant(
    casework: Casework, provider, provider_id
) -> None:
    programme = programme_code()
    referral_id = await casework.accepted_referral(provider_id, programme=programme)

    response = await provider.post("/v1/participants", json=body(referral_id))

    assert response.status_code == 201, response.text
    participant = response.json()
    assert response.headers["location"] == f"/v1/participants/{participant['id']}"
    assert {k: participant[k] for k in ("referral_id", "programme", "provider_id")} == {
        "referral_id": str(referral_id),
        "programme": programme,
        "provider_id": str(provider_id),
    }
    assert participant["attached_on"] == "2024-02-20"
    assert participant["key_worker"] == "kw-17"
    assert participant["status"] == "active"
    assert participant["employment"] == []
    assert participant["left_on"] is None
    uuid.UUID(participant["id"])
    # The provider sees who it is supporting: the referral's person details.
    assert participant["person"]["given_name"] == "Sam"

    fetched = await provider.get(f"/v1/participants/{participant['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["id"] == participant["id"]


async def test_attachment_publishes_an_event_without_personal_data(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    participant = (await provider.post("/v1/participants", json=body(referral_id))).json()

    published = [
        e
        for e in await outbox_events(casework.app.runtime, "casework.participant.attached")
        if e.payload["participant_id"] == participant["id"]
    ]
    assert len(published) == 1
    assert published[0].payload == {
        "participant_id": participant["id"],
        "referral_id": str(referral_id),
        "programme": participant["programme"],
        "provider_id": str(provider_id),
        "attached_on": "2024-02-20",
    }


async def test_a_retry_returns_the_same_participant_with_200(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    first = await provider.post("/v1/participants", json=body(referral_id))
    again = await provider.post("/v1/participants", json=body(referral_id))

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert await participant_count(casework, referral_id) == 1
    attached = [
        e
        for e in await outbox_events(casework.app.runtime, "casework.participant.attached")
        if e.payload["referral_id"] == str(referral_id)
    ]
    assert len(attached) == 1


async def test_a_retry_is_recognised_after_the_referral_became_attached(
    casework: Casework, provider, provider_id
) -> None:
    programme = programme_code()
    referral_id = await casework.accepted_referral(provider_id, programme=programme)
    first = await provider.post("/v1/participants", json=body(referral_id))
    await publish(
        casework.sandbox,
        status_event(
            referral_id,
            "attached",
            provider_id=provider_id,
            programme=programme,
            referred_on=REFERRED_ON,
        ),
    )
    await until_status(casework.app, referral_id, "attached")

    again = await provider.post("/v1/participants", json=body(referral_id))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "change", [{"attached_on": "2024-02-21"}, {"key_worker": "kw-99"}], ids=["date", "worker"]
)
async def test_attaching_again_with_a_different_body_is_409(
    casework: Casework, provider, provider_id, change
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    assert (await provider.post("/v1/participants", json=body(referral_id))).status_code == 201

    response = await provider.post("/v1/participants", json=body(referral_id, **change))

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert await participant_count(casework, referral_id) == 1


async def test_a_referral_routed_to_another_provider_is_404(
    casework: Casework, other_provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    response = await other_provider.post("/v1/participants", json=body(referral_id))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert await participant_count(casework, referral_id) == 0


@pytest.mark.parametrize("status", ["rejected", "duplicate"])
async def test_a_referral_never_routed_is_404(casework: Casework, provider, status: str) -> None:
    referral_id = uuid.uuid4()
    programme = programme_code()
    await publish(
        casework.sandbox,
        status_event(
            referral_id, "received", provider_id=None, programme=programme, referred_on=REFERRED_ON
        ),
        status_event(
            referral_id,
            status,
            provider_id=None,
            programme=programme,
            referred_on=REFERRED_ON,
            reasons=["outside_area"] if status == "rejected" else [],
        ),
    )
    await until_status(casework.app, referral_id, status)

    response = await provider.post("/v1/participants", json=body(referral_id))
    assert response.status_code == 404


async def test_an_unknown_referral_is_404_once_the_wait_runs_out(
    casework: Casework, provider
) -> None:
    with casework.consistency_wait(0.3):
        response = await provider.post("/v1/participants", json=body(uuid.uuid4()))
    assert response.status_code == 404


async def test_attachments_waiting_for_their_referrals_do_not_starve_the_consumer(
    casework: Casework, provider, provider_id
) -> None:
    # More attachments waiting (§8) than the pool has connections: each must hand its
    # connection back between looks, or the consumer storing the news they wait for
    # gets none, and every one of them ends in a 404.
    programme = programme_code()
    referral_ids = [uuid.uuid4() for _ in range(12)]
    with casework.consistency_wait(3.0):
        attaching = [
            asyncio.create_task(provider.post("/v1/participants", json=body(referral_id)))
            for referral_id in referral_ids
        ]
        await asyncio.sleep(0.3)  # let every request start waiting
        for referral_id in referral_ids:
            await casework.accepted_referral(
                provider_id, programme=programme, referral_id=referral_id, wait=False
            )
        responses = await asyncio.gather(*attaching)
    assert [r.status_code for r in responses] == [201] * len(referral_ids)
    assert {r.json()["referral_id"] for r in responses} == {str(r) for r in referral_ids}


@pytest.mark.parametrize("status", ["withdrawn", "declined"])
async def test_a_withdrawn_or_declined_referral_is_409(
    casework: Casework, provider, provider_id, status: str
) -> None:
    programme = programme_code()
    referral_id = await casework.accepted_referral(provider_id, programme=programme)
    await publish(
        casework.sandbox,
        status_event(
            referral_id,
            status,
            provider_id=provider_id,
            programme=programme,
            referred_on=REFERRED_ON,
            previous="accepted",
        ),
    )
    await until_status(casework.app, referral_id, status)

    response = await provider.post("/v1/participants", json=body(referral_id))
    assert response.status_code == 409
    assert await participant_count(casework, referral_id) == 0


async def test_a_withdrawal_that_arrives_before_the_acceptance_still_wins(
    casework: Casework, provider, provider_id
) -> None:
    """Events of one referral may arrive out of order (a retried event after a later one)."""
    referral_id = uuid.uuid4()
    programme = programme_code()
    await publish(
        casework.sandbox,
        status_event(
            referral_id,
            "withdrawn",
            provider_id=provider_id,
            programme=programme,
            referred_on=REFERRED_ON,
        ),
    )
    await until_status(casework.app, referral_id, "withdrawn")
    await publish(
        casework.sandbox,
        accepted_event(referral_id, provider_id, programme=programme, referred_on=REFERRED_ON),
    )
    # Still withdrawn once the late acceptance has been applied (its details stored).
    await until_person_known(casework.app, referral_id)
    await until_status(casework.app, referral_id, "withdrawn")

    response = await provider.post("/v1/participants", json=body(referral_id))
    assert response.status_code == 409


async def attached_events(casework: Casework, referral_id: uuid.UUID) -> list[Any]:
    return [
        e
        for e in await outbox_events(casework.app.runtime, "casework.participant.attached")
        if e.payload["referral_id"] == str(referral_id)
    ]


@pytest.mark.parametrize("status", ["withdrawn", "declined"])
async def test_an_attachment_referrals_refuses_is_409_and_leaves_nothing(
    casework: Casework, provider, provider_id, status: str
) -> None:
    """The referral was withdrawn or declined in referrals, and casework's copy has not
    heard yet: referrals' answer, not the copy, decides (contract §2, §3)."""
    referral_id = await casework.accepted_referral(provider_id)
    casework.referrals.refuse[referral_id] = status

    response = await provider.post("/v1/participants", json=body(referral_id))

    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert status in response.json()["detail"]
    assert await participant_count(casework, referral_id) == 0
    assert await attached_events(casework, referral_id) == []
    # Asked once; a retry is answered from the refusal, without asking again.
    again = await provider.post("/v1/participants", json=body(referral_id))
    assert again.status_code == 409
    assert [r.referral_id for r in casework.referrals.requests] == [referral_id]


async def test_an_attachment_referrals_has_not_answered_is_503_and_settled_when_it_does(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    casework.referrals.answering = False  # referrals is down

    with casework.consistency_wait(0.3):
        response = await provider.post("/v1/participants", json=body(referral_id))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "2"
        assert await participant_count(casework, referral_id) == 0
        # While it is asked, another attachment of the referral is a conflict.
        other = await provider.post("/v1/participants", json=body(referral_id, key_worker="kw-9"))
        assert other.status_code == 409
        assert "being attached" in other.json()["detail"]

    # Referrals comes back and answers the request it was sent.
    async def asked_once() -> AttachmentRequested:
        assert len(casework.referrals.requests) == 1
        return casework.referrals.requests[0]

    request = await eventually(asked_once)
    casework.referrals.answering = True
    await publish(casework.sandbox, casework.referrals.answer(request), producer="referrals")

    async def created() -> None:
        assert await participant_count(casework, referral_id) == 1

    await eventually(created)
    retried = await provider.post("/v1/participants", json=body(referral_id))
    assert retried.status_code == 200, retried.text
    assert retried.json()["id"] == str(request.participant_id)
    assert len(await attached_events(casework, referral_id)) == 1


async def test_attached_on_before_referred_on_is_422(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id, referred_on=date(2024, 2, 3))
    response = await provider.post(
        "/v1/participants", json=body(referral_id, attached_on="2024-02-02")
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["attached_on"]
    assert await participant_count(casework, referral_id) == 0

    same_day = await provider.post(
        "/v1/participants", json=body(referral_id, attached_on="2024-02-03")
    )
    assert same_day.status_code == 201


async def test_attached_on_in_the_future_is_422(casework: Casework, provider, provider_id) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = await provider.post("/v1/participants", json=body(referral_id, attached_on=tomorrow))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "attached_on"


async def test_attaching_before_the_acceptance_arrives_waits_for_it(
    casework: Casework, provider, provider_id
) -> None:
    """§8: once a partner has seen the referral accepted, attaching it succeeds."""
    referral_id = uuid.uuid4()
    programme = programme_code()
    casework.referrals.announced.add(referral_id)
    attach = asyncio.create_task(provider.post("/v1/participants", json=body(referral_id)))
    await asyncio.sleep(0.2)
    assert not attach.done()
    await publish(
        casework.sandbox,
        accepted_event(referral_id, provider_id, programme=programme, referred_on=REFERRED_ON),
    )
    response = await attach
    assert response.status_code == 201, response.text
    assert response.json()["programme"] == programme


async def test_two_simultaneous_attachments_make_one_participant(
    casework: Casework, provider, provider_id
) -> None:
    for _ in range(5):
        referral_id = await casework.accepted_referral(provider_id)
        responses = await asyncio.gather(
            *(provider.post("/v1/participants", json=body(referral_id)) for _ in range(3))
        )
        assert sorted(r.status_code for r in responses) == [200, 200, 201]
        assert len({r.json()["id"] for r in responses}) == 1
        assert await participant_count(casework, referral_id) == 1


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (None, {"referral_id", "attached_on", "key_worker"}),
        ({"referral_id": "not-a-uuid"}, {"referral_id"}),
        ({"attached_on": "2024-02-30"}, {"attached_on"}),
        ({"attached_on": "20/02/2024"}, {"attached_on"}),
        ({"attached_on": 20240220}, {"attached_on"}),
        ({"attached_on": "1708387200"}, {"attached_on"}),
        ({"attached_on": "2024-02-20T00:00:00"}, {"attached_on"}),
        ({"attached_on": None}, {"attached_on"}),
        ({"key_worker": "   "}, {"key_worker"}),
        ({"key_worker": 17}, {"key_worker"}),
        ({"key_worker": "k" * 201}, {"key_worker"}),
        ({"surprise": "field"}, {"surprise"}),
        ({"key_worker": "kw\u0000-17"}, {"key_worker"}),
    ],
)
async def test_malformed_bodies_are_422_naming_the_field(
    casework: Casework, provider, provider_id, payload, fields
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    sent = {} if payload is None else body(referral_id) | payload
    response = await provider.post("/v1/participants", json=sent)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in response.json()["errors"]} == fields
    assert await participant_count(casework, referral_id) == 0


async def test_a_lone_surrogate_is_422_not_a_crash(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    # The JSON is written out by hand to show exactly what is sent: a lone surrogate.
    raw = (
        f'{{"referral_id": "{referral_id}", "attached_on": "2024-02-20", '
        '"key_worker": "kw-\\ud800"}'
    )
    response = await provider.post(
        "/v1/participants", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert await participant_count(casework, referral_id) == 0


async def test_a_body_that_is_not_json_is_422(casework: Casework, provider) -> None:
    response = await provider.post(
        "/v1/participants", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_key_worker_is_trimmed_and_sql_is_just_text(
    casework: Casework, provider, provider_id
) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    worker = "  Robert'); DROP TABLE participants;-- ✓  "
    response = await provider.post("/v1/participants", json=body(referral_id, key_worker=worker))
    assert response.status_code == 201
    assert response.json()["key_worker"] == worker.strip()


@pytest.mark.parametrize("kind", ["jcp", "probation", "treatment", "programme_office"])
async def test_only_providers_attach(casework: Casework, provider_id, kind: str) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    async with casework.app.client(uuid.uuid4(), kind) as client:
        response = await client.post("/v1/participants", json=body(referral_id))
        # Forbidden before the body is even looked at.
        bad_body = await client.post("/v1/participants", json={"nonsense": True})
    assert response.status_code == 403
    assert bad_body.status_code == 403
    assert await participant_count(casework, referral_id) == 0


async def test_unsigned_calls_are_401(casework: Casework, provider_id) -> None:
    referral_id = await casework.accepted_referral(provider_id)
    async with casework.app.client() as anonymous:
        response = await anonymous.post("/v1/participants", json=body(referral_id))
    assert response.status_code == 401
