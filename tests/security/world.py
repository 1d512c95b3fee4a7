"""Two tenants' worth of real data, built through the gateway as partners build it.

A *tenant* is a referrer and the provider its referral is routed to, with everything
partners can own: a referral, a participant, a session, an assessment, an employment
episode, an outcome claim and a webhook each. The security tests check other partners
can neither see nor change any of it, and that personal data stays where it belongs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.builders import employment_body, job_start_claim_body, referral_body, unique
from tests.support.events import eventually
from tests.support.gateway import Gateway, Partner


@dataclass
class Tenant:
    referrer: Partner
    provider: Partner
    programme: str
    person: dict[str, Any]
    referral: dict[str, Any] = field(default_factory=dict)
    participant: dict[str, Any] = field(default_factory=dict)
    session_external_id: str = ""
    assessment: dict[str, Any] = field(default_factory=dict)
    episode: dict[str, Any] = field(default_factory=dict)
    claim: dict[str, Any] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # partner id -> hook

    @property
    def partners(self) -> tuple[Partner, Partner]:
        return (self.referrer, self.provider)

    def private_values(self) -> list[str]:
        """Strings only this tenant's partners (and the programme office) may ever see."""
        values = [
            self.referral["id"],
            self.referral["external_ref"],
            self.participant["id"],
            self.episode["id"],
            self.claim["id"],
            self.assessment["id"],
            self.session_external_id,
            self.person["family_name"],
            self.person["nino"],
            *(hook["id"] for hook in self.webhooks.values()),
        ]
        return [v for v in values if v]


async def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.request.url, response.text)
    return response.json()


async def build_tenant(
    referrer: Partner,
    provider: Partner,
    programme: str,
    local_authority: str,
    *,
    person: dict[str, Any] | None = None,
    notes: str = "free text",
) -> Tenant:
    body = referral_body(programme, notes=notes)
    body["person"] = {**body["person"], "local_authority": local_authority, **(person or {})}
    tenant = Tenant(referrer, provider, programme, body["person"])
    async with referrer.client() as ref, provider.client() as prov:
        tenant.referral = await _ok(await ref.post("/v1/referrals", json=body), 201)
        referral_id = tenant.referral["id"]

        async def accepted() -> None:
            seen = await _ok(await prov.get(f"/v1/referrals/{referral_id}"), 200, 404)
            assert seen.get("status") == "accepted", seen

        await eventually(accepted, timeout=30)

        async def attached() -> dict[str, Any]:
            # The platform under test waits only briefly for events (fuzzing makes up
            # thousands of unknown ids), so casework may need a moment to hear of it.
            response = await prov.post(
                "/v1/participants",
                json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw"},
            )
            assert response.status_code in (200, 201), response.text
            return response.json()

        tenant.participant = await eventually(attached, timeout=30)
        pid = tenant.participant["id"]
        tenant.session_external_id = unique("crm")
        synced = await _ok(
            await prov.post(
                "/v1/sessions/bulk",
                json={
                    "sessions": [
                        {
                            "external_id": tenant.session_external_id,
                            "participant_id": pid,
                            "occurred_at": "2024-03-01T10:00:00+00:00",
                            "kind": "one_to_one",
                            "duration_minutes": 45,
                            "attendance": "attended",
                            "modified_at": "2024-03-01T12:00:00+00:00",
                            "notes": notes,
                        }
                    ]
                },
            ),
            200,
        )
        assert synced["results"][0]["status"] == "created", synced
        tenant.assessment = await _ok(
            await prov.post(
                f"/v1/participants/{pid}/assessments",
                json={
                    "assessed_on": "2024-02-20",
                    "kind": "initial",
                    "barriers": {"mental_health": 5, "confidence": 4},
                    "wellbeing": 41,
                },
            ),
            201,
        )
        tenant.episode = await _ok(
            await prov.post(
                f"/v1/participants/{pid}/employment",
                json=employment_body(employer=unique("Employer")),
            ),
            201,
        )

        async def claimed() -> dict[str, Any]:
            response = await prov.post(
                "/v1/outcome-claims",
                json=job_start_claim_body(pid, tenant.episode["id"]),
            )
            assert response.status_code == 201, response.text
            return response.json()

        tenant.claim = await claimed()

        async def decided() -> None:
            seen = await _ok(await prov.get(f"/v1/outcome-claims/{tenant.claim['id']}"), 200)
            assert seen["status"] != "submitted", seen
            tenant.claim = seen

        await eventually(decided, timeout=30)
    for partner in tenant.partners:
        async with partner.client() as client:
            tenant.webhooks[partner.id] = await _ok(
                await client.post(
                    "/v1/webhooks",
                    json={
                        "url": f"https://hooks.example.org/{unique('hook')}",
                        "events": ["referral.status_changed"],
                    },
                ),
                201,
            )
    return tenant


async def two_tenants(gateway: Gateway) -> tuple[Tenant, Tenant]:
    """Two referrers of the same kind and two providers in one programme."""
    referrers = [await gateway.create_partner("jcp") for _ in range(2)]
    providers = [await gateway.create_partner("provider") for _ in range(2)]
    programme = await gateway.define_programme({providers[0]: ["Wigan"], providers[1]: ["Bolton"]})
    first = await build_tenant(referrers[0], providers[0], programme["code"], "Wigan")
    second = await build_tenant(referrers[1], providers[1], programme["code"], "Bolton")
    return first, second
