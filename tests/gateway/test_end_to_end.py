"""Through the real gateway to the real services, every service its own process as
``make run`` starts them: identities travel signed, tenancy holds, keys revoke at once,
a status change reaches the webhook queue, and nothing gets in around the gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.builders import referral_body
from tests.support.events import eventually
from tests.support.gateway import Gateway
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform


async def test_a_referral_through_the_gateway_end_to_end(platform: RunningPlatform) -> None:
    gateway = Gateway(platform.gateway_url, platform.admin_token)
    try:
        referrer = await gateway.create_partner("jcp")
        other_referrer = await gateway.create_partner("probation")
        provider = await gateway.create_partner("provider")
        office = await gateway.create_partner("programme_office")
        programme = await gateway.define_programme({provider: ["Wigan"]})

        async with referrer.client() as client:
            hook = await client.post(
                "/v1/webhooks",
                json={
                    "url": "https://hooks.example.org/pathways",
                    "events": ["referral.status_changed"],
                },
            )
            assert hook.status_code == 201, hook.text
            created = await client.post("/v1/referrals", json=referral_body(programme["code"]))
            assert created.status_code == 201, created.text
            referral = created.json()
            assert referral["source"] == "jcp"
            assert created.headers["location"] == f"/v1/referrals/{referral['id']}"

            async def accepted() -> None:
                got = await client.get(f"/v1/referrals/{referral['id']}")
                assert got.status_code == 200 and got.json()["status"] == "accepted", got.text

            await eventually(accepted, timeout=20)
            # A kind that may never decline is stopped at the gateway.
            declined = await client.post(f"/v1/referrals/{referral['id']}/decline", json={})
            assert declined.status_code == 403

        # Tenancy, decided by the service from the identity the gateway signed.
        async with other_referrer.client() as client:
            assert (await client.get(f"/v1/referrals/{referral['id']}")).status_code == 404
        for partner in (provider, office):
            async with partner.client() as client:
                seen = await client.get(f"/v1/referrals/{referral['id']}")
                assert seen.status_code == 200, (partner.kind, seen.text)

        # The status changes reached the gateway as events and were queued as webhooks.
        async with referrer.client() as client:

            async def queued() -> None:
                listed = await client.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")
                statuses = {d["referral_id"] for d in listed.json()["items"]}
                assert referral["id"] in statuses, listed.text

            await eventually(queued, timeout=20)

        # The audit log knows who made it.
        async with office.client() as client:

            async def audited() -> None:
                page = await client.get("/v1/audit", params={"partner_id": referrer.id})
                rows = [(i["method"], i["route"], i["resource_id"]) for i in page.json()["items"]]
                assert ("POST", "/v1/referrals", referral["id"]) in rows, rows

            await eventually(audited)

        # The running gateway documents the services' endpoints.
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
            document = (await client.get("/openapi.json")).json()
        assert {"/v1/referrals", "/v1/participants", "/v1/audit"} <= set(document["paths"])

        # Revoked: refused at once, by the real gateway.
        keys = await gateway.admin.get(f"/admin/partners/{referrer.id}/keys")
        key_id = keys.json()["items"][0]["id"]
        revoked = await gateway.admin.post(f"/admin/partners/{referrer.id}/keys/{key_id}/revoke")
        assert revoked.status_code == 200
        async with referrer.client() as client:
            assert (await client.get(f"/v1/referrals/{referral['id']}")).status_code == 401
    finally:
        await gateway.aclose()


async def test_the_services_refuse_calls_that_go_around_the_gateway(
    platform: RunningPlatform,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service, path in [
            ("referrals", "/v1/referrals"),
            ("casework", "/v1/participants"),
            ("outcomes", "/v1/outcome-claims"),
            ("reporting", "/v1/reports/performance?programme=x"),
        ]:
            forged = {
                "x-pathways-partner-id": str(uuid.uuid4()),
                "x-pathways-partner-kind": "programme_office",
                "x-pathways-timestamp": "0",
                "x-pathways-signature": "0" * 64,
            }
            for headers in ({}, forged):
                response = await client.get(platform.config.url(service) + path, headers=headers)
                assert response.status_code == 401, (service, response.text)
