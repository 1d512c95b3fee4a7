"""Referrals through the real gateway, every service a process (contract §1, §2):
authentication, kinds, visibility between partners, retries and the duplicate race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.support.builders import random_nino, referral_body, unique
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform


@dataclass
class World:
    gateway: Gateway
    code: str
    jcp: Partner
    probation: Partner
    provider: Partner  # Wigan, Bolton
    other_provider: Partner  # Manchester
    office: Partner


@pytest_asyncio.fixture
async def world(platform: RunningPlatform) -> AsyncIterator[World]:
    gateway = Gateway(platform.gateway_url, platform.admin_token)
    try:
        provider = await gateway.create_partner("provider")
        other_provider = await gateway.create_partner("provider")
        programme = await gateway.define_programme(
            {provider: ["Wigan", "Bolton"], other_provider: ["Manchester"]}
        )
        yield World(
            gateway,
            programme["code"],
            await gateway.create_partner("jcp"),
            await gateway.create_partner("probation"),
            provider,
            other_provider,
            await gateway.create_partner("programme_office"),
        )
    finally:
        await gateway.aclose()


async def test_a_referral_posted_right_after_the_admin_call_is_decided_on_it(
    world: World,
) -> None:
    # §8: the definition is in force for every call made after the admin call returned.
    async with world.jcp.client() as jcp:
        response = await jcp.post("/v1/referrals", json=referral_body(world.code))
    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["status"] == "accepted"
    assert referral["provider_id"] == world.provider.id
    assert referral["source"] == "jcp"
    assert response.headers["location"] == f"/v1/referrals/{referral['id']}"


async def test_visibility_between_partners(world: World) -> None:
    async with world.jcp.client() as jcp:
        referral = (await jcp.post("/v1/referrals", json=referral_body(world.code))).json()
    url = f"/v1/referrals/{referral['id']}"
    expected = {
        world.jcp: 200,
        world.probation: 404,
        world.provider: 200,
        world.other_provider: 404,
        world.office: 200,
    }
    for partner, status in expected.items():
        async with partner.client() as client:
            response = await client.get(url)
            listed = {item["id"] for item in (await client.get("/v1/referrals")).json()["items"]}
        assert response.status_code == status, (partner.kind, response.text)
        assert (referral["id"] in listed) is (status == 200), partner.kind


async def test_who_may_do_what(world: World) -> None:
    async with world.jcp.client() as jcp:
        referral = (await jcp.post("/v1/referrals", json=referral_body(world.code))).json()
    url = f"/v1/referrals/{referral['id']}"
    reason = {"reason": "No longer looking for work"}
    async with world.office.client() as office:
        assert (
            await office.post("/v1/referrals", json=referral_body(world.code))
        ).status_code == 403
        assert (await office.post(f"{url}/withdraw", json=reason)).status_code == 403
    async with world.jcp.client() as jcp:
        assert (await jcp.post(f"{url}/decline", json=reason)).status_code == 403
    async with world.probation.client() as probation:
        assert (await probation.post(f"{url}/withdraw", json=reason)).status_code == 404
    async with world.other_provider.client() as other:
        assert (await other.post(f"{url}/decline", json=reason)).status_code == 404
    async with world.provider.client() as provider:
        declined = await provider.post(f"{url}/decline", json=reason)
    assert declined.status_code == 200
    assert declined.json()["status"] == "declined"
    async with world.jcp.client() as jcp:
        assert (await jcp.post(f"{url}/withdraw", json=reason)).status_code == 409


async def test_no_key_or_a_wrong_key_is_401(world: World) -> None:
    async with world.jcp.client() as jcp:
        del jcp.headers["Authorization"]
        assert (await jcp.get("/v1/referrals")).status_code == 401
        jcp.headers["Authorization"] = "Bearer not-a-key"
        assert (await jcp.post("/v1/referrals", json=referral_body(world.code))).status_code == 401


async def test_retries_through_the_gateway(world: World) -> None:
    body = referral_body(world.code)
    headers = {"Idempotency-Key": unique("key")}
    async with world.jcp.client() as jcp:
        first = await jcp.post("/v1/referrals", json=body, headers=headers)
        again = await jcp.post("/v1/referrals", json=body, headers=headers)
        other = await jcp.post("/v1/referrals", json=referral_body(world.code), headers=headers)
        by_ref = await jcp.post("/v1/referrals", json={**body, "notes": "changed"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert by_ref.status_code == 409


async def test_bad_input_is_a_problem_naming_the_field(world: World) -> None:
    async with world.jcp.client() as jcp:
        response = await jcp.post(
            "/v1/referrals", json=referral_body(world.code, person={"nino": "QQ123456C"})
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["person.nino"]


async def test_two_partners_posting_one_person_at_once_through_the_gateway(world: World) -> None:
    async with world.jcp.client() as jcp, world.probation.client() as probation:
        for _ in range(5):
            person = {
                "given_name": "Robin",
                "family_name": unique("Hughes"),
                "date_of_birth": "1990-07-01",
                "nino": random_nino(),
                "postcode": "BL1 1AA",
                "local_authority": "Bolton",
            }
            first, second = referral_body(world.code), referral_body(world.code)
            first["person"], second["person"] = person, {**person, "nino": None}
            responses = await asyncio.gather(
                jcp.post("/v1/referrals", json=first), probation.post("/v1/referrals", json=second)
            )
            statuses = sorted(r.json()["status"] for r in responses)
            assert statuses == ["accepted", "duplicate"], [r.text for r in responses]
