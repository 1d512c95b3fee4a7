"""Forwarding: a service down, silent or broken gets a problem body quickly (503, 504,
502), never a hang; bodies are capped (413) and streamed both ways; hop-by-hop headers
stay on their hop."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from pathways.sandbox import Sandbox
from shared.caller import PartnerKind
from tests.gateway.harness import (
    EchoLog,
    GatewayUnderTest,
    Server,
    echo_app,
    free_port,
    gateway_settings,
)
from tests.support.gateway import Partner

MAX_BODY = 8192
MAX_BULK = 65536


class Blackhole:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Blackhole:
        async def swallow(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass

        self.server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest_asyncio.fixture(scope="module")
async def routing(gw_sandbox: Sandbox) -> AsyncIterator[tuple[GatewayUnderTest, EchoLog]]:
    log = EchoLog()
    echo = await Server(echo_app(gw_sandbox.config.internal_secret, log, "echo")).start()
    hole = await Blackhole().start()
    settings = gateway_settings(
        gw_sandbox,
        referrals_url=f"http://127.0.0.1:{free_port()}",  # nobody listening
        casework_url=echo.url,
        outcomes_url=f"http://127.0.0.1:{hole.port}",
        reporting_url=echo.url,
        upstream_read_timeout=0.5,
        max_body_bytes=MAX_BODY,
        max_bulk_body_bytes=MAX_BULK,
        run_consumer=False,
        run_webhook_dispatcher=False,
        rate_limits={k.value: {"per_second": 1000, "burst": 100000} for k in PartnerKind},
    )
    gateway = await GatewayUnderTest(gw_sandbox, settings).start()
    try:
        yield gateway, log
    finally:
        await gateway.stop()
        await echo.stop()
        await hole.stop()


@pytest_asyncio.fixture(scope="module")
async def provider(routing) -> Partner:
    return await routing[0].partner("provider")


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_a_service_that_is_down_gets_503_at_once(routing, provider: Partner) -> None:
    gateway, _ = routing
    # The client gives up after 5 s: a hanging gateway fails this test.
    async with gateway.client(provider.api_key, timeout=5) as client:
        for method, body in (("GET", None), ("POST", {"external_ref": "x"})):
            response = await client.request(method, "/v1/referrals", json=body)
            problem = _problem(response, 503)
            assert "referrals" in problem["detail"]
            assert int(response.headers["retry-after"]) >= 1


async def test_a_service_that_never_answers_gets_504(routing, provider: Partner) -> None:
    gateway, _ = routing
    async with gateway.client(provider.api_key, timeout=5) as client:
        _problem(await client.get("/v1/outcome-claims"), 504)


async def test_a_service_crash_without_a_problem_body_becomes_a_502_problem(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    async with gateway.client(provider.api_key) as client:
        _problem(await client.get("/v1/participants", params={"echo_crash": "1"}), 502)


async def test_service_answers_pass_through_with_their_status_and_location(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    created = f"/v1/participants/{uuid.uuid4()}"
    async with gateway.client(provider.api_key) as client:
        response = await client.post(
            "/v1/participants",
            params={"echo_status": "201", "echo_location": created},
            json={"referral_id": str(uuid.uuid4())},
        )
        assert response.status_code == 201 and response.headers["location"] == created
        conflict = await client.get("/v1/participants", params={"echo_status": "409"})
        assert conflict.status_code == 409 and conflict.json()["service"] == "echo"


async def test_a_body_over_the_limit_is_refused_before_any_service_sees_it(
    routing, provider: Partner
) -> None:
    gateway, log = routing
    before = len(log.requests)
    big = b'{"notes": "' + b"x" * MAX_BODY + b'"}'

    async def chunked(data: bytes):
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    async with gateway.client(provider.api_key) as client:
        declared = await client.post(
            "/v1/participants", content=big, headers={"content-type": "application/json"}
        )
        _problem(declared, 413)
        streamed = await client.post(
            "/v1/participants",
            content=chunked(big),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        # The gateway's own routes are capped too.
        webhook = await client.post(
            "/v1/webhooks", content=big, headers={"content-type": "application/json"}
        )
        _problem(webhook, 413)
    assert len(log.requests) == before


async def test_bodies_within_the_limit_arrive_intact_streamed_or_not(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    body = bytes(range(256)) * (MAX_BODY // 256)
    assert len(body) == MAX_BODY

    async def chunked():
        for i in range(0, len(body), 777):
            yield body[i : i + 777]

    async with gateway.client(provider.api_key) as client:
        for content in (body, chunked()):
            response = await client.post("/v1/participants", content=content)
            assert response.status_code == 200, response.text
            seen = response.json()
            assert seen["body_length"] == len(body)
            assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_a_bulk_sync_has_its_own_larger_cap(routing, provider: Partner) -> None:
    gateway, _ = routing
    item = {"external_id": "crm-1", "notes": "n" * 100}
    fits = {"sessions": [item] * (MAX_BODY * 2 // 120)}
    async with gateway.client(provider.api_key) as client:
        response = await client.post("/v1/sessions/bulk", json=fits)
        assert response.status_code == 200, response.text
        too_big = {"sessions": [item] * (MAX_BULK // 100)}
        _problem(await client.post("/v1/sessions/bulk", json=too_big), 413)


async def test_a_large_response_is_streamed_whole(routing, provider: Partner) -> None:
    gateway, _ = routing
    size = 5_000_000
    async with (
        gateway.client(provider.api_key) as client,
        client.stream("GET", "/v1/participants", params={"echo_size": size}) as r,
    ):
        assert r.status_code == 200
        received = 0
        async for chunk in r.aiter_bytes():
            received += len(chunk)
    assert received == size


async def test_hop_by_hop_headers_stay_on_their_hop_and_the_request_id_goes_through(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    headers = {
        "connection": "x-session-hint",
        "x-session-hint": "secret-ish",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        "te": "trailers",
        "x-request-id": "req-from-partner-42",
        "x-correlation": "kept",
        "x-forwarded-for": "10.9.8.7",
        "forwarded": "for=10.9.8.7",
    }
    async with gateway.client(provider.api_key, headers=headers) as client:
        response = await client.get("/v1/participants")
    assert response.status_code == 200
    seen = response.json()["headers"]
    for dropped in (
        "x-session-hint",
        "proxy-authorization",
        "te",
        "authorization",
        "x-forwarded-for",
        "forwarded",
    ):
        assert dropped not in seen, dropped
    assert seen["x-correlation"] == "kept"
    assert seen["x-request-id"] == "req-from-partner-42"
    assert response.headers.get_list("x-request-id") == ["req-from-partner-42"]
    assert response.headers["x-upstream"] == "echo"
    assert len(response.headers.get_list("server")) <= 1
    assert len(response.headers.get_list("date")) == 1


async def test_a_request_id_is_assigned_and_passed_on_when_the_partner_sends_none(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    async with gateway.client(provider.api_key) as client:
        response = await client.get("/v1/participants")
    assigned = response.headers["x-request-id"]
    assert assigned and response.json()["headers"]["x-request-id"] == assigned


async def test_when_the_audit_log_cannot_be_written_partner_calls_are_refused(
    gw_sandbox: Sandbox, routing
) -> None:
    """Fail closed: a call that cannot be audited is not served."""
    settings = gateway_settings(
        gw_sandbox,
        casework_url=routing[0].settings.casework_url,
        audit_buffer_max=100,
        audit_flush_seconds=3600,  # as if the database never took the rows
        run_consumer=False,
        run_webhook_dispatcher=False,
        rate_limits={k.value: {"per_second": 1000, "burst": 100000} for k in PartnerKind},
    )
    gateway = await GatewayUnderTest(gw_sandbox, settings).start()
    try:
        provider = await gateway.partner("provider")
        async with gateway.client(provider.api_key) as client:
            statuses = [(await client.get("/v1/participants")).status_code for _ in range(101)]
            assert statuses[0] == 200 and statuses[-1] == 503
            _problem(await client.get("/v1/participants"), 503)
            await gateway.flush_audit()
            assert (await client.get("/v1/participants")).status_code == 200
    finally:
        await gateway.stop()


async def test_refusals_and_failures_are_counted_in_metrics_without_ids(
    routing, provider: Partner
) -> None:
    gateway, _ = routing
    async with gateway.client(provider.api_key) as client:
        await client.get("/v1/referrals")  # the service is down
        await client.get("/v1/reports/performance")  # not for providers
    async with gateway.client() as client:
        await client.get("/v1/referrals")  # no key
        metrics = (await client.get("/metrics")).text
    assert 'gateway_upstream_errors_total{error="unavailable",service="referrals"}' in metrics
    assert 'gateway_forbidden_total{kind="provider"}' in metrics
    assert "gateway_auth_failures_total" in metrics
    assert 'route="/v1/referrals"' in metrics  # latency by template, never by raw path
    assert provider.id not in metrics and provider.api_key not in metrics
