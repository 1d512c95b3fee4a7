"""Withdraw, decline and attachment; every legal and illegal transition (contract §2, §3)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from pathways.sandbox import Sandbox
from tests.referrals.helpers import (
    Partner,
    Programme,
    attached_event,
    attachment_request,
    dead_lettered_event_ids,
    events_of,
    statuses,
)
from tests.support.builders import referral_body
from tests.support.events import eventually, publish

REASON = {"reason": "Moved out of the area"}


async def accepted_referral(partner: Partner, programme: Programme, **changes: Any) -> dict:
    response = await partner.refer(referral_body(programme.code, **changes))
    assert response.status_code == 201, response.text
    return response.json()


async def attach(
    sandbox: Sandbox, partner: Partner, referral: dict, provider_id: uuid.UUID
) -> dict:
    await publish(sandbox, attached_event(referral, provider_id))

    async def attached() -> dict:
        current = await partner.referral(referral["id"])
        assert current["status"] == "attached"
        return current

    return await eventually(attached)


async def test_the_referrer_withdraws_an_accepted_referral(
    jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    response = await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)

    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert withdrawn["status"] == "withdrawn"
    assert statuses(withdrawn) == ["received", "accepted", "withdrawn"]
    assert withdrawn["history"][-1]["reason"] == "Moved out of the area"
    assert withdrawn["provider_id"] == str(programme.provider)  # still shows where it went
    assert datetime.fromisoformat(withdrawn["updated_at"]) > datetime.fromisoformat(
        referral["updated_at"]
    )
    assert await jcp.referral(referral["id"]) == withdrawn

    last = (await events_of(jcp.app, referral["id"]))[-1]
    assert last.type == "referrals.referral.status_changed"
    assert last.payload["status"] == "withdrawn"
    assert last.payload["previous_status"] == "accepted"
    assert "Moved out" not in last.model_dump_json()


async def test_the_routed_provider_declines_an_accepted_referral(
    jcp: Partner, provider: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    response = await provider.post(
        f"/v1/referrals/{referral['id']}/decline", json={"reason": "Did not attend induction"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "declined"
    assert statuses(response.json()) == ["received", "accepted", "declined"]
    last = (await events_of(jcp.app, referral["id"]))[-1]
    assert (last.payload["status"], last.payload["previous_status"]) == ("declined", "accepted")


async def test_a_provider_withdraws_its_own_self_referral(
    provider: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(provider, programme)
    response = await provider.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)
    assert response.status_code == 200
    assert response.json()["status"] == "withdrawn"


async def make_in_status(
    status: str, sandbox: Sandbox, jcp: Partner, provider: Partner, programme: Programme
) -> dict:
    if status == "rejected":
        return await accepted_referral(jcp, programme, circumstances={"benefit": "PIP"})
    referral = await accepted_referral(jcp, programme)
    if status == "duplicate":
        again = referral_body(programme.code)
        again["person"] = referral["person"]
        return (await jcp.refer(again)).json()
    if status == "withdrawn":
        return (await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)).json()
    if status == "declined":
        return (await provider.post(f"/v1/referrals/{referral['id']}/decline", json=REASON)).json()
    if status == "attached":
        return await attach(sandbox, jcp, referral, programme.provider)
    raise AssertionError(status)


@pytest.mark.parametrize("status", ["rejected", "duplicate", "withdrawn", "declined", "attached"])
async def test_withdraw_is_only_from_received_or_accepted(
    sandbox: Sandbox, jcp: Partner, provider: Partner, programme: Programme, status: str
) -> None:
    referral = await make_in_status(status, sandbox, jcp, provider, programme)
    assert referral["status"] == status
    events_before = await events_of(jcp.app, referral["id"])

    response = await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)

    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await jcp.referral(referral["id"]) == referral
    assert await events_of(jcp.app, referral["id"]) == events_before


@pytest.mark.parametrize("status", ["withdrawn", "declined", "attached"])
async def test_decline_is_only_from_received_or_accepted(
    sandbox: Sandbox, jcp: Partner, provider: Partner, programme: Programme, status: str
) -> None:
    referral = await make_in_status(status, sandbox, jcp, provider, programme)
    events_before = await events_of(jcp.app, referral["id"])

    response = await provider.post(f"/v1/referrals/{referral['id']}/decline", json=REASON)

    assert response.status_code == 409, response.text
    assert await jcp.referral(referral["id"]) == referral
    assert await events_of(jcp.app, referral["id"]) == events_before


@pytest.mark.parametrize("status", ["rejected", "duplicate"])
async def test_a_provider_cannot_even_see_a_referral_never_routed_to_it(
    sandbox: Sandbox, jcp: Partner, provider: Partner, programme: Programme, status: str
) -> None:
    referral = await make_in_status(status, sandbox, jcp, provider, programme)
    response = await provider.post(f"/v1/referrals/{referral['id']}/decline", json=REASON)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": None},
        {"reason": 5},
        {"reason": "x" * 1001},
        {"reason": "ok", "extra": 1},
        {"reason": "a\x00b"},
    ],
)
@pytest.mark.parametrize("action", ["withdraw", "decline"])
async def test_a_reason_is_required(
    jcp: Partner, provider: Partner, programme: Programme, body: dict, action: str
) -> None:
    referral = await accepted_referral(jcp, programme)
    caller = jcp if action == "withdraw" else provider
    response = await caller.post(f"/v1/referrals/{referral['id']}/{action}", json=body)
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields & {"reason", "extra"}
    assert (await jcp.referral(referral["id"]))["status"] == "accepted"


async def test_a_multi_line_reason_is_kept(jcp: Partner, programme: Programme) -> None:
    referral = await accepted_referral(jcp, programme)
    response = await jcp.post(
        f"/v1/referrals/{referral['id']}/withdraw", json={"reason": " Line one\nLine two "}
    )
    assert response.json()["history"][-1]["reason"] == "Line one\nLine two"


# --- who may move what ------------------------------------------------------------------------


async def test_kinds_that_may_never_withdraw_or_decline_get_403(
    jcp: Partner, office: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    url = f"/v1/referrals/{referral['id']}"
    assert (await office.post(f"{url}/withdraw", json=REASON)).status_code == 403
    assert (await office.post(f"{url}/decline", json=REASON)).status_code == 403
    assert (await jcp.post(f"{url}/decline", json=REASON)).status_code == 403
    assert (await jcp.referral(referral["id"]))["status"] == "accepted"


async def test_the_routed_provider_may_not_withdraw_what_a_referrer_made(
    jcp: Partner, provider: Partner, programme: Programme
) -> None:
    # It sees the referral, but only the maker withdraws: ownership, so 404 (authz matrix).
    referral = await accepted_referral(jcp, programme)
    response = await provider.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (await jcp.referral(referral["id"]))["status"] == "accepted"


async def test_a_provider_may_not_decline_its_self_referral_routed_elsewhere(
    provider: Partner, other_provider: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(
        provider, programme, person={"local_authority": "Manchester"}
    )
    url = f"/v1/referrals/{referral['id']}/decline"
    assert (await provider.post(url, json=REASON)).status_code == 404
    assert (await other_provider.post(url, json=REASON)).status_code == 200


async def test_partners_who_cannot_see_a_referral_get_404(
    jcp: Partner, probation: Partner, other_provider: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    url = f"/v1/referrals/{referral['id']}"
    assert (await probation.post(f"{url}/withdraw", json=REASON)).status_code == 404
    assert (await other_provider.post(f"{url}/decline", json=REASON)).status_code == 404
    assert (
        await jcp.post(f"/v1/referrals/{uuid.uuid4()}/withdraw", json=REASON)
    ).status_code == 404
    # An id that is not even a UUID names nothing the partner may see (§1): 404, not 422.
    assert (await jcp.post("/v1/referrals/not-a-uuid/withdraw", json=REASON)).status_code == 404
    assert (
        await other_provider.post("/v1/referrals/not-a-uuid/decline", json=REASON)
    ).status_code == 404
    assert (await jcp.referral(referral["id"]))["status"] == "accepted"


# --- attachment asked for by casework ---------------------------------------------------------


async def answer_to(sandbox: Sandbox, partner: Partner, request: Any) -> dict[str, Any]:
    """Publish casework's request and wait for the answer referrals writes for it."""
    referral_id = str(request.referral_id)

    async def answers() -> list[dict[str, Any]]:
        return [
            e.payload
            for e in await events_of(partner.app, referral_id, ATTACHMENT_ANSWERED)
            if e.payload["participant_id"] == str(request.participant_id)
        ]

    before = len(await answers())
    await publish(sandbox, request)

    async def answered() -> dict[str, Any]:
        now = await answers()
        assert len(now) == before + 1
        return now[-1]

    return await eventually(answered)


ATTACHMENT_ANSWERED = "referrals.referral.attachment_answered"


async def test_an_attachment_asked_for_an_accepted_referral_is_granted(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    request = attachment_request(referral, programme.provider)
    answer = await answer_to(sandbox, jcp, request)

    assert (answer["granted"], answer["status"]) == (True, "attached")
    current = await jcp.referral(referral["id"])
    assert statuses(current) == ["received", "accepted", "attached"]
    # Webhooks and reporting hear of the attachment before casework hears it granted.
    last_two = (await events_of(jcp.app, referral["id"]))[-2:]
    assert [e.type for e in last_two] == ["referrals.referral.status_changed", ATTACHMENT_ANSWERED]
    assert last_two[0].payload["status"] == "attached"
    # The referral is attached now, so the referrer can no longer withdraw it.
    withdrawn = await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)
    assert withdrawn.status_code == 409
    assert statuses(await jcp.referral(referral["id"])) == ["received", "accepted", "attached"]


@pytest.mark.parametrize("move", ["withdraw", "decline"])
async def test_an_attachment_asked_for_after_a_withdrawal_or_decline_is_refused(
    sandbox: Sandbox, jcp: Partner, provider: Partner, programme: Programme, move: str
) -> None:
    referral = await accepted_referral(jcp, programme)
    mover = jcp if move == "withdraw" else provider
    moved = await mover.post(f"/v1/referrals/{referral['id']}/{move}", json=REASON)
    assert moved.status_code == 200, moved.text
    before = await jcp.referral(referral["id"])

    answer = await answer_to(sandbox, jcp, attachment_request(referral, programme.provider))

    status = "withdrawn" if move == "withdraw" else "declined"
    assert (answer["granted"], answer["status"]) == (False, status)
    assert await jcp.referral(referral["id"]) == before


async def test_an_attachment_asked_for_again_is_granted_to_the_same_participant_only(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    first = attachment_request(referral, programme.provider)
    await answer_to(sandbox, jcp, first)

    # The same request under a new event id (casework re-sent it), and another participant.
    again = await answer_to(sandbox, jcp, first)
    other = await answer_to(sandbox, jcp, attachment_request(referral, programme.provider))

    assert (again["granted"], again["status"]) == (True, "attached")
    assert (other["granted"], other["status"]) == (False, "attached")
    current = await jcp.referral(referral["id"])
    assert statuses(current) == ["received", "accepted", "attached"]


async def test_an_attachment_asked_for_by_another_provider_is_refused(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    answer = await answer_to(sandbox, jcp, attachment_request(referral, uuid.uuid4()))
    assert (answer["granted"], answer["status"]) == (False, "accepted")
    assert (await jcp.referral(referral["id"]))["status"] == "accepted"


# --- attachment -------------------------------------------------------------------------------


async def test_attachment_by_casework_makes_the_referral_attached(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    attached = await attach(sandbox, jcp, referral, programme.provider)

    assert statuses(attached) == ["received", "accepted", "attached"]
    assert attached["provider_id"] == str(programme.provider)
    changes = await events_of(jcp.app, referral["id"], "referrals.referral.status_changed")
    assert [(e.payload["status"], e.payload["previous_status"]) for e in changes] == [
        ("received", None),
        ("accepted", "received"),
        ("attached", "accepted"),
    ]


async def test_attachment_is_applied_once(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    event = attached_event(referral, programme.provider)
    await publish(sandbox, event)
    await publish(sandbox, event)  # redelivered under a new event id
    await publish(sandbox, attached_event(referral, programme.provider))  # another participant

    # Events are consumed in order: once a later attachment shows, all three were handled.
    marker = await accepted_referral(jcp, programme)
    await attach(sandbox, jcp, marker, programme.provider)
    current = await jcp.referral(referral["id"])
    assert statuses(current) == ["received", "accepted", "attached"]
    attached_events = [
        e
        for e in await events_of(jcp.app, referral["id"], "referrals.referral.status_changed")
        if e.payload["status"] == "attached"
    ]
    assert len(attached_events) == 1


async def test_an_attachment_crossing_a_withdrawal_is_recorded(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme)
    await jcp.post(f"/v1/referrals/{referral['id']}/withdraw", json=REASON)
    attached = await attach(sandbox, jcp, referral, programme.provider)
    assert statuses(attached) == ["received", "accepted", "withdrawn", "attached"]
    last = (await events_of(jcp.app, referral["id"]))[-1]
    assert (last.payload["status"], last.payload["previous_status"]) == ("attached", "withdrawn")


async def test_an_attachment_for_an_unknown_referral_is_kept_for_a_person(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = {"id": str(uuid.uuid4()), "programme": programme.code}
    [envelope] = await publish(sandbox, attached_event(referral, programme.provider))

    async def dead_lettered() -> None:
        assert str(envelope.event_id) in await dead_lettered_event_ids(sandbox)

    await eventually(dead_lettered)


async def test_an_attachment_for_a_rejected_referral_changes_nothing(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    referral = await accepted_referral(jcp, programme, circumstances={"benefit": "PIP"})
    [envelope] = await publish(sandbox, attached_event(referral, programme.provider))

    async def dead_lettered() -> None:
        assert str(envelope.event_id) in await dead_lettered_event_ids(sandbox)

    await eventually(dead_lettered)
    assert await jcp.referral(referral["id"]) == referral
