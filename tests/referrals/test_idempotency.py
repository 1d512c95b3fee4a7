"""Retries are safe: external_ref and Idempotency-Key (contract §2)."""

from __future__ import annotations

import asyncio
import copy

from services.referrals.domain import today_uk
from tests.referrals.helpers import (
    Partner,
    Programme,
    events_by_referrer,
    stored_count,
)
from tests.support.builders import referral_body


async def test_same_external_ref_and_body_returns_the_stored_referral(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    first = await jcp.refer(body)
    events_after_first = len(await events_by_referrer(jcp.app, jcp.id))
    again = await jcp.refer(body)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert "location" not in again.headers
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1
    assert len(await events_by_referrer(jcp.app, jcp.id)) == events_after_first


async def test_a_retry_is_recognised_after_normalisation(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code, person={"nino": "AB123456C", "postcode": "WN1 1AA"})
    first = await jcp.refer(body)
    retry = copy.deepcopy(body)
    retry["person"].update(
        nino=" ab 12 34 56 c",
        postcode="wn11aa",
        given_name="  Sam ",
        family_name=body["person"]["family_name"] + "  ",
    )
    # Key order does not matter either.
    retry = {key: retry[key] for key in reversed(list(retry))}
    again = await jcp.refer(retry)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


async def test_a_different_body_under_the_same_external_ref_is_409(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    first = await jcp.refer(body)
    events_after_first = len(await events_by_referrer(jcp.app, jcp.id))
    for change in (
        {"person": {**body["person"], "given_name": "Samantha"}},
        {"notes": "different notes"},
        {"referred_on": "2024-02-02"},
        {"circumstances": {**body["circumstances"], "months_out_of_work": 31}},
    ):
        response = await jcp.refer({**body, **change})
        assert response.status_code == 409, change
        assert response.headers["content-type"] == "application/problem+json"
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1
    assert len(await events_by_referrer(jcp.app, jcp.id)) == events_after_first
    assert (await jcp.referral(first.json()["id"])) == first.json()


async def test_external_refs_belong_to_each_partner(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    mine = await jcp.refer(body)
    theirs = await probation.refer(referral_body(programme.code, external_ref=body["external_ref"]))
    assert mine.status_code == 201
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]


async def test_an_external_ref_keeps_its_inner_spaces(jcp: Partner, programme: Programme) -> None:
    # A ref is the partner's identifier: "JCP  7" and "JCP 7" are two of them.
    wide_body = referral_body(programme.code, external_ref=" JCP  7 ")
    wide = await jcp.refer(wide_body)
    narrow = await jcp.refer(referral_body(programme.code, external_ref="JCP 7"))
    assert (wide.status_code, narrow.status_code) == (201, 201), narrow.text
    assert wide.json()["external_ref"] == "JCP  7"
    assert narrow.json()["external_ref"] == "JCP 7"
    assert narrow.json()["id"] != wide.json()["id"]
    retry = await jcp.refer({**wide_body, "external_ref": "JCP  7"})
    assert (retry.status_code, retry.json()["id"]) == (200, wide.json()["id"])


async def test_a_left_out_referred_on_is_the_same_request_on_retry(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    del body["referred_on"]
    first = await jcp.refer(body)
    again = await jcp.refer(body)
    explicit = await jcp.refer({**body, "referred_on": first.json()["referred_on"]})
    assert again.status_code == 200
    assert explicit.status_code == 200
    assert explicit.json()["id"] == first.json()["id"]


async def test_leaving_out_a_past_referred_on_on_retry_is_a_different_request(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code, referred_on="2024-02-03")
    await jcp.refer(body)
    retry = {k: v for k, v in body.items() if k != "referred_on"}
    assert today_uk().isoformat() != "2024-02-03"
    assert (await jcp.refer(retry)).status_code == 409


async def test_a_retry_returns_the_referral_as_it_is_now(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    first = (await jcp.refer(body)).json()
    await jcp.post(f"/v1/referrals/{first['id']}/withdraw", json={"reason": "moved away"})
    again = await jcp.refer(body)
    assert again.status_code == 200
    assert again.json()["status"] == "withdrawn"


async def test_a_rejected_referral_is_retried_the_same_way(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code, circumstances={"benefit": "PIP"})
    first = await jcp.refer(body)
    again = await jcp.refer(body)
    assert first.json()["status"] == "rejected"
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


async def test_concurrent_identical_posts_create_one_referral(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    responses = await asyncio.gather(*(jcp.refer(body) for _ in range(6)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1
    # One referral, one set of events.
    received = [
        e for e in await events_by_referrer(jcp.app, jcp.id) if e.payload["status"] == "received"
    ]
    assert len(received) == 1


# --- Idempotency-Key -------------------------------------------------------------------------


async def test_same_idempotency_key_and_body_returns_the_stored_referral(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    headers = {"Idempotency-Key": "key-1"}
    first = await jcp.refer(body, headers=headers)
    again = await jcp.refer(body, headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1


async def test_same_idempotency_key_with_a_different_body_is_409(
    jcp: Partner, programme: Programme
) -> None:
    headers = {"Idempotency-Key": "key-2"}
    first = await jcp.refer(referral_body(programme.code), headers=headers)
    # A different external_ref too: the key alone says it is the same request.
    other = await jcp.refer(referral_body(programme.code), headers=headers)
    assert first.status_code == 201
    assert other.status_code == 409
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1


async def test_idempotency_keys_belong_to_each_partner(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = await jcp.refer(referral_body(programme.code), headers=headers)
    theirs = await probation.refer(referral_body(programme.code), headers=headers)
    assert (mine.status_code, theirs.status_code) == (201, 201)


async def test_a_new_key_on_a_known_external_ref_follows_the_external_ref(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    first = await jcp.refer(body, headers={"Idempotency-Key": "a"})
    same = await jcp.refer(body, headers={"Idempotency-Key": "b"})
    different = await jcp.refer({**body, "notes": "changed"}, headers={"Idempotency-Key": "c"})
    assert same.status_code == 200
    assert same.json()["id"] == first.json()["id"]
    assert different.status_code == 409


async def test_a_refused_request_does_not_use_up_its_key(
    jcp: Partner, programme: Programme
) -> None:
    headers = {"Idempotency-Key": "after-a-422"}
    bad = await jcp.refer(referral_body(programme.code, consent={"given": False}), headers=headers)
    good = await jcp.refer(referral_body(programme.code), headers=headers)
    assert bad.status_code == 422
    assert good.status_code == 201


async def test_concurrent_posts_with_one_key_and_different_bodies_store_one(
    jcp: Partner, programme: Programme
) -> None:
    headers = {"Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(jcp.refer(referral_body(programme.code), headers=headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 1
    received = [
        e for e in await events_by_referrer(jcp.app, jcp.id) if e.payload["status"] == "received"
    ]
    assert len(received) == 1


async def test_concurrent_identical_posts_with_one_key_create_one_referral(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(programme.code)
    headers = {"Idempotency-Key": "same-everything"}
    responses = await asyncio.gather(*(jcp.refer(body, headers=headers) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
