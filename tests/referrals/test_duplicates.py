"""The same person referred twice (contract §2.1), including at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from pathways.sandbox import Sandbox
from shared.events.casework import ParticipantAttached
from tests.referrals.helpers import Partner, Programme, define_programme, events_of
from tests.support.builders import random_nino, referral_body, unique
from tests.support.events import eventually, publish


def person(**changes: Any) -> dict[str, Any]:
    base = {
        "given_name": "Alex",
        "family_name": unique("Jones"),
        "date_of_birth": "1985-03-09",
        "nino": random_nino(),
        "postcode": "WN1 1AA",
        "local_authority": "Wigan",
    }
    return {**base, **changes}


async def refer(partner: Partner, programme: Programme, who: dict[str, Any], **extra) -> dict:
    body = referral_body(programme.code, **extra)
    body["person"] = {**who}
    response = await partner.refer(body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_same_nino_is_the_same_person_whatever_else_differs(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(
        probation,
        programme,
        {
            **someone,
            "nino": " " + someone["nino"].lower(),
            "family_name": "Different",
            "given_name": "Other",
            "postcode": "M1 1AE",
            "date_of_birth": "1990-01-01",
        },
    )
    assert first["status"] == "accepted"
    assert second["status"] == "duplicate"
    assert second["duplicate_of"] == first["id"]
    assert second["provider_id"] is None
    assert second["reasons"] == []
    assert [h["status"] for h in second["history"]] == ["received", "duplicate"]


async def test_different_ninos_are_different_people_even_with_the_same_name(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(probation, programme, {**someone, "nino": random_nino()})
    assert (first["status"], second["status"]) == ("accepted", "accepted")


async def test_without_a_nino_on_one_side_name_birth_date_and_postcode_decide(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(
        probation,
        programme,
        {
            **someone,
            "nino": None,
            "given_name": "Different Given Name",
            "family_name": someone["family_name"].upper(),
            "postcode": "wn1  1aa",
        },
    )
    assert first["status"] == "accepted"
    assert second["status"] == "duplicate"
    assert second["duplicate_of"] == first["id"]


async def test_without_a_nino_on_either_side_the_name_rule_applies(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person(nino=None)
    first = await refer(jcp, programme, someone)
    second = await refer(
        probation, programme, {**someone, "family_name": someone["family_name"].lower()}
    )
    assert second["status"] == "duplicate"
    assert second["duplicate_of"] == first["id"]


async def test_the_earlier_referral_without_a_nino_matches_a_later_one_with(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person(nino=None)
    first = await refer(jcp, programme, someone)
    second = await refer(probation, programme, {**someone, "nino": random_nino()})
    assert second["duplicate_of"] == first["id"]


async def test_any_difference_in_the_name_key_is_another_person(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person(nino=None)
    await refer(jcp, programme, someone)
    for change in (
        {"date_of_birth": "1985-03-10"},
        {"postcode": "WN1 1AB"},
        {"family_name": someone["family_name"] + "-Smith"},
    ):
        other = await refer(probation, programme, {**someone, **change})
        assert other["status"] == "accepted", change


async def test_the_same_person_in_another_programme_is_not_a_duplicate(
    sandbox: Sandbox, jcp: Partner, programme: Programme
) -> None:
    second_programme = Programme(
        await define_programme(sandbox, jcp.app, {programme.provider: ["Wigan"]}),
        programme.provider,
        programme.other_provider,
    )
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(jcp, second_programme, someone)
    assert (first["status"], second["status"]) == ("accepted", "accepted")


async def test_the_same_partner_referring_twice_is_caught_too(
    jcp: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(jcp, programme, someone)
    assert second["duplicate_of"] == first["id"]


async def test_only_an_eligible_referral_is_checked_for_duplicates(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    await refer(jcp, programme, someone)
    ineligible = await refer(probation, programme, someone, circumstances={"benefit": "PIP"})
    assert ineligible["status"] == "rejected"
    assert ineligible["reasons"] == ["benefit_not_eligible"]
    assert ineligible["duplicate_of"] is None


async def test_a_referral_that_no_longer_stands_does_not_make_duplicates(
    jcp: Partner, probation: Partner, provider: Partner, programme: Programme
) -> None:
    # withdrawn
    someone = person()
    first = await refer(jcp, programme, someone)
    await jcp.post(f"/v1/referrals/{first['id']}/withdraw", json={"reason": "error"})
    assert (await refer(probation, programme, someone))["status"] == "accepted"
    # declined
    someone = person()
    first = await refer(jcp, programme, someone)
    await provider.post(f"/v1/referrals/{first['id']}/decline", json={"reason": "did not attend"})
    assert (await refer(probation, programme, someone))["status"] == "accepted"
    # rejected
    someone = person()
    await refer(jcp, programme, someone, circumstances={"benefit": "PIP"})
    assert (await refer(probation, programme, someone))["status"] == "accepted"
    # a duplicate itself: the third referral is a duplicate of the first, not the second
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(probation, programme, someone)
    third = await refer(jcp, programme, someone)
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]


async def test_an_attached_referral_makes_duplicates(
    sandbox: Sandbox, jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    await publish(
        sandbox,
        ParticipantAttached(
            participant_id=uuid.uuid4(),
            referral_id=uuid.UUID(first["id"]),
            programme=programme.code,
            provider_id=programme.provider,
            attached_on="2024-02-20",
        ),
    )

    async def attached() -> None:
        assert (await jcp.referral(first["id"]))["status"] == "attached"

    await eventually(attached)
    second = await refer(probation, programme, someone)
    assert second["status"] == "duplicate"
    assert second["duplicate_of"] == first["id"]


async def test_a_duplicate_gets_events_saying_so(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    someone = person()
    first = await refer(jcp, programme, someone)
    second = await refer(probation, programme, someone)
    events = await events_of(jcp.app, second["id"])
    assert [e.type for e in events] == [
        "referrals.referral.status_changed",
        "referrals.referral.status_changed",
    ]
    assert events[1].payload["status"] == "duplicate"
    assert events[1].payload["duplicate_of"] == first["id"]
    assert events[1].payload["provider_id"] is None


async def _race(
    a: Partner, b: Partner, programme: Programme, who_a: dict, who_b: dict
) -> list[dict]:
    body_a, body_b = referral_body(programme.code), referral_body(programme.code)
    body_a["person"], body_b["person"] = who_a, who_b
    responses = await asyncio.gather(a.refer(body_a), b.refer(body_b))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    return [r.json() for r in responses]


async def test_two_partners_posting_the_same_person_at_once_give_one_accepted(
    new_partner, programme: Programme
) -> None:
    for _ in range(10):
        someone = person()
        results = await _race(
            new_partner("jcp"), new_partner("probation"), programme, someone, someone
        )
        by_status = {r["status"]: r for r in results}
        assert sorted(by_status) == ["accepted", "duplicate"], [r["status"] for r in results]
        assert by_status["duplicate"]["duplicate_of"] == by_status["accepted"]["id"]


async def test_the_name_rule_holds_at_once_too(new_partner, programme: Programme) -> None:
    # One has a NINO, the other not: they meet only on the name key.
    for _ in range(10):
        someone = person()
        results = await _race(
            new_partner("jcp"),
            new_partner("treatment"),
            programme,
            someone,
            {**someone, "nino": None, "family_name": someone["family_name"].upper()},
        )
        assert sorted(r["status"] for r in results) == ["accepted", "duplicate"]


async def test_many_partners_at_once_still_give_exactly_one_accepted(
    new_partner, programme: Programme
) -> None:
    someone = person()
    bodies = []
    for i in range(8):
        body = referral_body(programme.code)
        body["person"] = {**someone, "nino": None} if i % 2 else dict(someone)
        bodies.append(body)
    partners = [new_partner("jcp") for _ in bodies]
    responses = await asyncio.gather(*(p.refer(b) for p, b in zip(partners, bodies, strict=True)))
    results = [r.json() for r in responses]
    accepted = [r for r in results if r["status"] == "accepted"]
    assert len(accepted) == 1
    assert all(
        r["status"] == "duplicate" and r["duplicate_of"] == accepted[0]["id"]
        for r in results
        if r is not accepted[0]
    )
