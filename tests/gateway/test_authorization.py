"""The authorization matrix (contract §1, briefs/authz.md), walked for every endpoint and
every partner kind: the gateway answers 401/403 itself, and forwards what is allowed to
the owning service with the partner's identity in headers the service can verify."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pathways.sandbox import Sandbox
from shared.caller import PartnerKind
from tests.gateway.harness import (
    EchoLog,
    GatewayUnderTest,
    Server,
    echo_app,
    gateway_settings,
    raw_request,
)
from tests.support.gateway import Partner

J, P, T = "jcp", "probation", "treatment"
PROVIDER, OFFICE = "provider", "programme_office"
REFERRERS = {J, P, T}
EVERYONE = REFERRERS | {PROVIDER, OFFICE}
KINDS = sorted(EVERYONE)

ID = str(uuid.uuid4())
EPISODE = str(uuid.uuid4())

# (method, path, owning service, kinds that may call it) — transcribed from the
# authorization matrix, not from the gateway's own table, so either can catch the other.
MATRIX: list[tuple[str, str, str, set[str]]] = [
    ("POST", "/v1/referrals", "referrals", REFERRERS | {PROVIDER}),
    ("GET", "/v1/referrals", "referrals", EVERYONE),
    ("GET", f"/v1/referrals/{ID}", "referrals", EVERYONE),
    ("POST", f"/v1/referrals/{ID}/withdraw", "referrals", REFERRERS | {PROVIDER}),
    ("POST", f"/v1/referrals/{ID}/decline", "referrals", {PROVIDER}),
    ("POST", "/v1/participants", "casework", {PROVIDER}),
    ("GET", "/v1/participants", "casework", {PROVIDER, OFFICE}),
    ("GET", f"/v1/participants/{ID}", "casework", {PROVIDER, OFFICE}),
    ("GET", f"/v1/participants/{ID}/sessions", "casework", {PROVIDER, OFFICE}),
    ("POST", "/v1/sessions/bulk", "casework", {PROVIDER}),
    ("POST", f"/v1/participants/{ID}/assessments", "casework", {PROVIDER}),
    ("POST", f"/v1/participants/{ID}/employment", "casework", {PROVIDER}),
    ("POST", f"/v1/participants/{ID}/employment/{EPISODE}/end", "casework", {PROVIDER}),
    ("POST", f"/v1/participants/{ID}/exit", "casework", {PROVIDER}),
    ("POST", "/v1/outcome-claims", "outcomes", {PROVIDER}),
    ("GET", "/v1/outcome-claims", "outcomes", {PROVIDER, OFFICE}),
    ("GET", f"/v1/outcome-claims/{ID}", "outcomes", {PROVIDER, OFFICE}),
    ("POST", f"/v1/outcome-claims/{ID}/decision", "outcomes", {OFFICE}),
    ("GET", "/v1/outcome-claims/audit-sample", "outcomes", {OFFICE}),
    ("GET", "/v1/payments/statement", "outcomes", {PROVIDER, OFFICE}),
    ("GET", "/v1/reports/performance", "reporting", {OFFICE}),
    ("GET", "/v1/reports/cohorts", "reporting", {OFFICE}),
    ("GET", "/v1/reports/barriers", "reporting", {OFFICE}),
    ("POST", "/v1/webhooks", "gateway", EVERYONE),
    ("GET", "/v1/webhooks", "gateway", EVERYONE),
    ("DELETE", f"/v1/webhooks/{ID}", "gateway", EVERYONE),
    ("GET", f"/v1/webhooks/{ID}/deliveries", "gateway", EVERYONE),
    ("GET", "/v1/audit", "gateway", {OFFICE}),
]
SERVICES = ("referrals", "casework", "outcomes", "reporting")


@pytest_asyncio.fixture(scope="module")
async def routed(gw_sandbox: Sandbox) -> AsyncIterator[tuple[GatewayUnderTest, EchoLog]]:
    """A gateway with a separate stand-in behind each service URL."""
    log = EchoLog()
    secret = gw_sandbox.config.internal_secret
    servers = {name: await Server(echo_app(secret, log, name)).start() for name in SERVICES}
    settings = gateway_settings(
        gw_sandbox,
        run_consumer=False,
        run_webhook_dispatcher=False,
        rate_limits={k.value: {"per_second": 1000, "burst": 10000} for k in PartnerKind},
        **{f"{name}_url": server.url for name, server in servers.items()},
    )
    gateway = await GatewayUnderTest(gw_sandbox, settings).start()
    try:
        yield gateway, log
    finally:
        await gateway.stop()
        for server in servers.values():
            await server.stop()


@pytest_asyncio.fixture(scope="module")
async def partners(routed) -> dict[str, Partner]:
    gateway, _ = routed
    return {kind: await gateway.partner(kind) for kind in KINDS}


def _body(method: str, path: str) -> dict | None:
    if method != "POST":
        return None
    if path == "/v1/webhooks":
        return {"url": "https://hooks.example.org/pathways", "events": ["referral.status_changed"]}
    if path == "/v1/sessions/bulk":
        return {"sessions": [{"external_id": "crm-1"}]}
    return {"reason": "test"}


@pytest.mark.parametrize("method, path, service, allowed", MATRIX)
async def test_every_endpoint_for_every_partner_kind(
    routed, partners: dict[str, Partner], method: str, path: str, service: str, allowed: set
) -> None:
    gateway, _ = routed
    query = "programme=working-well&limit=5"
    for kind in KINDS:
        partner = partners[kind]
        async with gateway.client(partner.api_key) as client:
            response = await client.request(method, f"{path}?{query}", json=_body(method, path))
        where = f"{kind} {method} {path}"
        if kind not in allowed:
            assert response.status_code == 403, f"{where}: {response.text}"
            assert response.headers["content-type"] == "application/problem+json"
            continue
        assert response.status_code not in (401, 403), f"{where}: {response.text}"
        if service == "gateway":
            assert response.status_code in (200, 201, 404), f"{where}: {response.text}"
            continue
        assert response.status_code == 200, f"{where}: {response.text}"
        seen = response.json()
        # Forwarded to the owning service, path and query untouched, and the service
        # verified the signed identity as this very partner.
        assert seen["service"] == service, where
        assert (seen["method"], seen["path"], seen["query"]) == (method, path, query), where
        assert seen["caller"] == {"partner_id": partner.id, "kind": kind}, where
        # The partner's key goes no further than the gateway.
        assert "authorization" not in seen["headers"], where


@pytest.mark.parametrize("method, path, service, allowed", MATRIX)
async def test_every_endpoint_refuses_a_call_without_a_key(
    routed, method: str, path: str, service: str, allowed: set
) -> None:
    gateway, log = routed
    before = len(log.requests)
    async with gateway.client() as client:
        response = await client.request(method, path, json=_body(method, path))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert len(log.requests) == before, "an unauthenticated call reached a service"


async def test_a_partner_cannot_forge_its_identity_with_internal_headers(
    routed, partners: dict[str, Partner]
) -> None:
    gateway, _ = routed
    jcp, provider = partners[J], partners[PROVIDER]
    forged = {
        "x-pathways-partner-id": provider.id,
        "x-pathways-partner-kind": "programme_office",
        "x-pathways-timestamp": "1",
        "x-pathways-signature": "0" * 64,
    }
    async with gateway.client(jcp.api_key, headers=forged) as client:
        response = await client.get("/v1/referrals")
        assert response.status_code == 200
        assert response.json()["caller"] == {"partner_id": jcp.id, "kind": J}
        # Nor reach what its kind may not, by claiming another kind.
        assert (await client.get("/v1/reports/performance")).status_code == 403


async def test_endpoints_a_service_adds_later_default_to_least_privilege(
    routed, partners: dict[str, Partner]
) -> None:
    """A path the matrix does not list is allowed only to the kinds that may use its
    area at all, and the service decides the rest."""
    gateway, _ = routed
    cases = [
        (f"/v1/participants/{ID}/key-worker", {PROVIDER, OFFICE}, "casework"),
        (f"/v1/referrals/{ID}/history", EVERYONE, "referrals"),
        ("/v1/reports/providers", {OFFICE}, "reporting"),
        (f"/v1/payments/{ID}", {PROVIDER, OFFICE}, "outcomes"),
    ]
    for path, allowed, service in cases:
        for kind in KINDS:
            async with gateway.client(partners[kind].api_key) as client:
                response = await client.get(path)
            if kind in allowed:
                assert response.status_code == 200, (kind, path)
                assert response.json()["service"] == service
            else:
                assert response.status_code == 403, (kind, path)


async def test_paths_no_service_owns_are_404_once_authenticated(
    routed, partners: dict[str, Partner]
) -> None:
    gateway, log = routed
    before = len(log.requests)
    auth = {"authorization": f"Bearer {partners[OFFICE].api_key}"}
    for target in [
        b"/v1/nothing-here",
        b"/v1/",
        b"/v1//referrals",
        # Written raw: an HTTP client would resolve the dots before sending.
        b"/v1/referrals/../reports/performance",
        b"/v1/referrals/%2e%2e/reports/performance",
        b"/v1/referrals/./x",
        b"/v1/referrals/..",
    ]:
        status, headers, _ = await raw_request(gateway.server.port, "GET", target, auth)
        assert status == 404, target
        assert headers["content-type"] == "application/problem+json"
    assert len(log.requests) == before


async def test_the_dashboard_page_needs_no_key_and_carries_no_identity(routed) -> None:
    gateway, _ = routed
    async with gateway.client(headers={"Authorization": "Bearer whatever"}) as client:
        for path in ("/dashboard", "/dashboard/app.js"):
            response = await client.get(path)
            assert response.status_code == 200, response.text
            seen = response.json()
            assert seen["service"] == "reporting" and seen["path"] == path
            assert seen["caller"] is None
            assert "authorization" not in seen["headers"]
            assert not any(h.startswith("x-pathways-") for h in seen["headers"])
