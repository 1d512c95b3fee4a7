"""Tenancy, generated from the gateway's own OpenAPI document: for every partner route
and every ordered pair of tenants, no partner of one tenant can read or change the
other's data (contract §1: 403 for a kind that may never act, 404 for what it may not
see, never a 2xx carrying the other's data).

The routes come from the running gateway, so an endpoint added later is covered at
once: the test fails until ``EXERCISES`` says how to aim it at another tenant's data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.world import Tenant
from tests.support.builders import referral_body
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform

DENIED = frozenset({403, 404})
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Attempt:
    """One request a partner of another tenant aims at the owner's data."""

    method: str
    url: str
    json: Any = None
    params: dict[str, str] | None = None
    # "denied": must be 403/404. "filtered": may succeed, but shows none of the owner's
    # data (a list, or a create that names the owner's ids and must be refused per item).
    expect: str = "denied"


Aim = Callable[[Tenant, Tenant], list[Attempt]]


def _session_item(owner: Tenant) -> dict[str, Any]:
    return {
        "external_id": owner.session_external_id,
        "participant_id": owner.participant["id"],
        "occurred_at": "2024-03-01T10:00:00+00:00",
        "kind": "phone",
        "duration_minutes": 5,
        "attendance": "cancelled",
        "modified_at": "2030-01-01T00:00:00+00:00",
        "notes": "overwritten by another tenant",
    }


def _pid(owner: Tenant) -> str:
    return owner.participant["id"]


# (METHOD, path template as the gateway documents it) -> the attempts against ``owner``
# made by each partner of ``intruder``.
EXERCISES: dict[tuple[str, str], Aim] = {
    ("POST", "/v1/referrals"): lambda o, i: [
        # Another partner reusing the owner's external_ref gets a referral of its own,
        # never the owner's back (the idempotency key is per partner). Out of area, so no
        # provider is shown it (its colleague provider's lists stay the tenant's own).
        Attempt(
            "POST",
            "/v1/referrals",
            json=referral_body(
                o.programme,
                external_ref=o.referral["external_ref"],
                person={"local_authority": "Nowhere"},
            ),
            expect="filtered",
        )
    ],
    ("GET", "/v1/referrals"): lambda o, i: [
        Attempt("GET", "/v1/referrals", expect="filtered"),
        Attempt("GET", "/v1/referrals", params={"programme": o.programme}, expect="filtered"),
    ],
    ("GET", "/v1/referrals/{referral_id}"): lambda o, i: [
        Attempt("GET", f"/v1/referrals/{o.referral['id']}")
    ],
    ("POST", "/v1/referrals/{referral_id}/withdraw"): lambda o, i: [
        Attempt("POST", f"/v1/referrals/{o.referral['id']}/withdraw", json={"reason": "x"})
    ],
    ("POST", "/v1/referrals/{referral_id}/decline"): lambda o, i: [
        Attempt("POST", f"/v1/referrals/{o.referral['id']}/decline", json={"reason": "x"})
    ],
    ("POST", "/v1/participants"): lambda o, i: [
        Attempt(
            "POST",
            "/v1/participants",
            json={"referral_id": o.referral["id"], "attached_on": "2024-02-21", "key_worker": "x"},
        )
    ],
    ("GET", "/v1/participants"): lambda o, i: [
        Attempt("GET", "/v1/participants", expect="filtered"),
        Attempt("GET", "/v1/participants", params={"programme": o.programme}, expect="filtered"),
    ],
    ("GET", "/v1/participants/{participant_id}"): lambda o, i: [
        Attempt("GET", f"/v1/participants/{_pid(o)}")
    ],
    ("GET", "/v1/participants/{participant_id}/sessions"): lambda o, i: [
        Attempt("GET", f"/v1/participants/{_pid(o)}/sessions")
    ],
    ("POST", "/v1/sessions/bulk"): lambda o, i: [
        Attempt("POST", "/v1/sessions/bulk", json={"sessions": [_session_item(o)]}, expect="bulk")
    ],
    ("POST", "/v1/participants/{participant_id}/exit"): lambda o, i: [
        Attempt(
            "POST",
            f"/v1/participants/{_pid(o)}/exit",
            json={"left_on": "2024-06-01", "reason": "other"},
        )
    ],
    ("POST", "/v1/participants/{participant_id}/key-worker"): lambda o, i: [
        Attempt("POST", f"/v1/participants/{_pid(o)}/key-worker", json={"key_worker": "kw-x"})
    ],
    ("POST", "/v1/participants/{participant_id}/assessments"): lambda o, i: [
        Attempt(
            "POST",
            f"/v1/participants/{_pid(o)}/assessments",
            json={"assessed_on": "2024-03-01", "kind": "review", "barriers": {"housing": 1}},
        )
    ],
    ("GET", "/v1/participants/{participant_id}/assessments"): lambda o, i: [
        Attempt("GET", f"/v1/participants/{_pid(o)}/assessments")
    ],
    ("GET", "/v1/participants/{participant_id}/assessments/{assessment_id}"): lambda o, i: [
        Attempt("GET", f"/v1/participants/{_pid(o)}/assessments/{o.assessment['id']}"),
        # The intruder's own participant with the owner's assessment id.
        Attempt("GET", f"/v1/participants/{_pid(i)}/assessments/{o.assessment['id']}"),
    ],
    ("POST", "/v1/participants/{participant_id}/employment"): lambda o, i: [
        Attempt(
            "POST",
            f"/v1/participants/{_pid(o)}/employment",
            json={
                "employer": "x",
                "started_on": "2024-06-01",
                "hours_per_week": 30,
                "weekly_earnings_pence": 1,
                "self_employed": False,
            },
        )
    ],
    ("GET", "/v1/participants/{participant_id}/employment/{episode_id}"): lambda o, i: [
        Attempt("GET", f"/v1/participants/{_pid(o)}/employment/{o.episode['id']}"),
        Attempt("GET", f"/v1/participants/{_pid(i)}/employment/{o.episode['id']}"),
    ],
    ("POST", "/v1/participants/{participant_id}/employment/{episode_id}/end"): lambda o, i: [
        Attempt(
            "POST",
            f"/v1/participants/{_pid(o)}/employment/{o.episode['id']}/end",
            json={"ended_on": "2024-06-01"},
        ),
        Attempt(
            "POST",
            f"/v1/participants/{_pid(i)}/employment/{o.episode['id']}/end",
            json={"ended_on": "2024-06-01"},
        ),
    ],
    ("POST", "/v1/outcome-claims"): lambda o, i: [
        # Contract §4: a claim for another provider's participant is taken (201) and
        # rejected not_attached; it is the intruder's claim and shows nothing of the owner.
        Attempt(
            "POST",
            "/v1/outcome-claims",
            json={
                "participant_id": _pid(o),
                "type": "qualification",
                "achieved_on": "2024-05-02",
                "evidence": [{"kind": "certificate", "reference": "C-1", "dated": "2024-05-02"}],
            },
            expect="filtered",
        )
    ],
    ("GET", "/v1/outcome-claims"): lambda o, i: [
        Attempt("GET", "/v1/outcome-claims", expect="filtered"),
        Attempt("GET", "/v1/outcome-claims", params={"participant_id": _pid(o)}, expect="filtered"),
    ],
    ("GET", "/v1/outcome-claims/audit-sample"): lambda o, i: [
        Attempt("GET", "/v1/outcome-claims/audit-sample", params={"programme": o.programme})
    ],
    ("GET", "/v1/outcome-claims/{claim_id}"): lambda o, i: [
        Attempt("GET", f"/v1/outcome-claims/{o.claim['id']}")
    ],
    ("POST", "/v1/outcome-claims/{claim_id}/decision"): lambda o, i: [
        Attempt(
            "POST",
            f"/v1/outcome-claims/{o.claim['id']}/decision",
            json={"decision": "reject", "reason": "x"},
        )
    ],
    ("GET", "/v1/payments/statement"): lambda o, i: [
        Attempt(
            "GET",
            "/v1/payments/statement",
            params={"programme": o.programme, "period": "2024-02"},
            expect="filtered",
        ),
        Attempt(
            "GET",
            "/v1/payments/statement",
            params={"programme": o.programme, "period": "2024-05", "provider_id": o.provider.id},
            expect="filtered",
        ),
    ],
    # Reports are the programme office's alone: every other kind is refused outright.
    ("GET", "/v1/reports/performance"): lambda o, i: [
        Attempt("GET", "/v1/reports/performance", params={"programme": o.programme})
    ],
    ("GET", "/v1/reports/cohorts"): lambda o, i: [
        Attempt("GET", "/v1/reports/cohorts", params={"programme": o.programme})
    ],
    ("GET", "/v1/reports/barriers"): lambda o, i: [
        Attempt("GET", "/v1/reports/barriers", params={"programme": o.programme})
    ],
    ("GET", "/v1/reports/programmes"): lambda o, i: [Attempt("GET", "/v1/reports/programmes")],
    ("POST", "/v1/webhooks"): lambda o, i: [
        Attempt(
            "POST",
            "/v1/webhooks",
            json={
                "url": "https://hooks.example.org/intruder",
                "events": ["referral.status_changed"],
            },
            expect="filtered",
        )
    ],
    ("GET", "/v1/webhooks"): lambda o, i: [Attempt("GET", "/v1/webhooks", expect="filtered")],
    ("DELETE", "/v1/webhooks/{webhook_id}"): lambda o, i: [
        Attempt("DELETE", f"/v1/webhooks/{hook['id']}") for hook in o.webhooks.values()
    ],
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): lambda o, i: [
        Attempt("GET", f"/v1/webhooks/{hook['id']}/deliveries") for hook in o.webhooks.values()
    ],
    ("GET", "/v1/audit"): lambda o, i: [
        Attempt("GET", "/v1/audit", params={"partner_id": o.referrer.id})
    ],
}


def _admin_attempt(method: str, path: str, owner: Tenant) -> Attempt:
    """Admin routes: a partner's API key is never the admin token (401/403 only)."""
    url = re.sub(r"\{partner_id\}", owner.referrer.id, path)
    url = re.sub(r"\{code\}", owner.programme, url)
    url = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", url)
    body = {"name": "x", "kind": "jcp"} if method == "POST" else None
    return Attempt(method, url, json=body, expect="unauthorised")


async def documented_routes(platform: RunningPlatform) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


def _leaks(response: httpx.Response, attempt: Attempt, owner: Tenant) -> list[str]:
    """The owner's private values in the answer that the intruder did not send itself."""
    sent = attempt.url + json.dumps(attempt.json) + json.dumps(attempt.params)
    return [v for v in owner.private_values() if v in response.text and v not in sent]


async def _try(
    client: httpx.AsyncClient, attempt: Attempt, owner: Tenant, intruder: Partner
) -> str | None:
    """What went wrong, or None."""
    response = await client.request(
        attempt.method, attempt.url, json=attempt.json, params=attempt.params
    )
    where = f"{intruder.kind} {attempt.method} {attempt.url} {attempt.params or ''}"
    if response.status_code >= 500:
        return f"{where}: {response.status_code} {response.text[:200]}"
    if attempt.expect == "unauthorised":
        ok = response.status_code in (401, 403)
        return None if ok else f"{where}: {response.status_code}, not 401/403"
    if attempt.expect == "denied" and response.status_code not in DENIED:
        return f"{where}: {response.status_code}, not 403/404: {response.text[:200]}"
    if response.status_code >= 400 and (
        response.headers.get("content-type") != "application/problem+json"
    ):
        return f"{where}: {response.status_code} without a problem body"
    if attempt.expect == "bulk" and response.status_code == 200:
        statuses = [r["status"] for r in response.json()["results"]]
        if statuses != ["error"]:
            return f"{where}: another tenant's participant's session was {statuses}"
    if leaked := _leaks(response, attempt, owner):
        return f"{where}: {response.status_code} shows the owner's {leaked}"
    return None


async def test_every_partner_route_keeps_tenants_apart(
    secure_platform: RunningPlatform, tenants: tuple[Tenant, Tenant]
) -> None:
    routes = await documented_routes(secure_platform)
    unknown = [f"{m} {p}" for m, p in routes if p.startswith("/v1/") and (m, p) not in EXERCISES]
    assert unknown == [], (
        f"routes this test does not know how to aim at another tenant's data: {unknown}; "
        "add them to EXERCISES"
    )
    stale = [f"{m} {p}" for m, p in EXERCISES if (m, p) not in routes]
    assert stale == [], f"EXERCISES names routes the gateway no longer documents: {stale}"

    problems: list[str] = []
    tried = 0
    for owner, other in (tenants, tenants[::-1]):
        for intruder in other.partners:
            attempts = [
                _admin_attempt(method, path, owner) if path.startswith("/admin") else attempt
                for method, path in routes
                for attempt in (
                    EXERCISES[(method, path)](owner, other) if path.startswith("/v1/") else [None]
                )
            ]
            # Reads first: what the intruder itself creates while trying (a referral under
            # the owner's external_ref, a claim naming the owner's participant) is its own
            # and would otherwise look like a leak in its lists.
            attempts.sort(key=lambda a: a.method != "GET")
            async with intruder.client() as client:
                for attempt in attempts:
                    tried += 1
                    if (problem := await _try(client, attempt, owner, intruder)) is not None:
                        problems.append(problem)
    assert problems == [], "\n".join(problems)
    assert tried >= 4 * len(routes)


async def _snapshot(tenant: Tenant, office: Partner) -> dict[str, Any]:
    """Everything of a tenant's, as the programme office sees it."""
    pid = tenant.participant["id"]
    async with office.client() as client:
        claims = await client.get("/v1/outcome-claims", params={"participant_id": pid})
        return {
            "referral": (await client.get(f"/v1/referrals/{tenant.referral['id']}")).json(),
            "participant": (await client.get(f"/v1/participants/{pid}")).json(),
            "sessions": (await client.get(f"/v1/participants/{pid}/sessions")).json()["items"],
            "assessments": (await client.get(f"/v1/participants/{pid}/assessments")).json(),
            "claims": {c["id"]: c for c in claims.json()["items"]},
        }


async def test_nothing_of_either_tenant_changed(
    secure_gateway: Gateway, secure_platform: RunningPlatform, tenants: tuple[Tenant, Tenant]
) -> None:
    """Run after the attempts above: every tenant's data is as its own partners left it."""
    office = await secure_gateway.create_partner("programme_office")
    for tenant in tenants:
        seen = await _snapshot(tenant, office)
        assert seen["referral"]["status"] == "attached"
        assert seen["participant"]["status"] == "active"
        assert seen["participant"]["key_worker"] == "kw"
        assert [e["ended_on"] for e in seen["participant"]["employment"]] == [None]
        assert len(seen["assessments"]["items"]) == 1
        assert [(s["external_id"], s["kind"]) for s in seen["sessions"]] == [
            (tenant.session_external_id, "one_to_one")
        ]
        claims = seen["claims"]
        assert claims.pop(tenant.claim["id"])["status"] == tenant.claim["status"]
        # What is left are the intruders' own claims (§4: taken, then not_attached).
        for claim in claims.values():
            assert claim["status"] == "rejected" and "not_attached" in claim["reasons"], claim
        for partner in tenant.partners:
            async with partner.client() as client:
                hooks = {h["id"] for h in (await client.get("/v1/webhooks")).json()["items"]}
            assert tenant.webhooks[partner.id]["id"] in hooks
