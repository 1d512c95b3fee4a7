"""Per-partner token buckets: 429 with Retry-After; a bulk session sync costs its items.

Buckets refill slowly here (a token every 5 or 10 seconds), so a slow test machine
cannot refill a bucket between two calls and hide a limit."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest_asyncio

from pathways.sandbox import Sandbox
from tests.gateway.harness import GatewayUnderTest, Server, gateway_settings

PROVIDER_RATE, PROVIDER_BURST = 0.1, 10
REFERRER_RATE, REFERRER_BURST = 0.2, 3


@pytest_asyncio.fixture(scope="module")
async def limited(gw_sandbox: Sandbox, echo: Server) -> AsyncIterator[GatewayUnderTest]:
    slow_referrer = {"per_second": REFERRER_RATE, "burst": REFERRER_BURST}
    settings = gateway_settings(
        gw_sandbox,
        upstream=echo.url,
        run_consumer=False,
        run_webhook_dispatcher=False,
        rate_limits={
            "jcp": slow_referrer,
            "provider": {"per_second": PROVIDER_RATE, "burst": PROVIDER_BURST},
        },
    )
    gateway = await GatewayUnderTest(gw_sandbox, settings).start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def _bulk(items: int) -> dict:
    return {"sessions": [{"external_id": f"crm-{i}"} for i in range(items)]}


def _limited(response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def test_calls_past_the_burst_get_429_with_retry_after(
    limited: GatewayUnderTest,
) -> None:
    jcp, other = await limited.partner("jcp"), await limited.partner("jcp")
    async with limited.client(jcp.api_key) as client:
        for _ in range(REFERRER_BURST):
            assert (await client.get("/v1/referrals")).status_code == 200
        retry_after = _limited(await client.get("/v1/referrals"))
        assert retry_after <= math.ceil(1 / REFERRER_RATE)
        # Every kind of call counts, the gateway's own routes too.
        _limited(await client.get("/v1/webhooks"))
    # Limits are per partner: another partner of the same kind is unaffected.
    async with limited.client(other.api_key) as client:
        assert (await client.get("/v1/referrals")).status_code == 200


async def test_limits_are_configured_per_kind(limited: GatewayUnderTest) -> None:
    """probation keeps the default limit while jcp was given a tiny one."""
    probation = await limited.partner("probation")
    async with limited.client(probation.api_key) as client:
        for _ in range(REFERRER_BURST * 3):
            assert (await client.get("/v1/referrals")).status_code == 200


async def test_a_bulk_session_sync_costs_its_number_of_items(
    limited: GatewayUnderTest,
) -> None:
    provider = await limited.partner("provider")
    async with limited.client(provider.api_key) as client:
        assert (await client.post("/v1/sessions/bulk", json=_bulk(8))).status_code == 200
        # 2 tokens left: a 5-item sync must wait for 3 more, at 0.1 a second.
        retry_after = _limited(await client.post("/v1/sessions/bulk", json=_bulk(5)))
        assert math.ceil(3 / PROVIDER_RATE) - 5 <= retry_after <= math.ceil(3 / PROVIDER_RATE)
        # ...while a single call fits in what is left.
        assert (await client.get("/v1/participants")).status_code == 200
        assert (await client.post("/v1/sessions/bulk", json=_bulk(1))).status_code == 200
        _limited(await client.get("/v1/participants"))


async def test_a_sync_bigger_than_the_bucket_goes_through_once_and_leaves_a_debt(
    limited: GatewayUnderTest,
) -> None:
    provider = await limited.partner("provider")
    async with limited.client(provider.api_key) as client:
        big = 25
        assert (await client.post("/v1/sessions/bulk", json=_bulk(big))).status_code == 200
        retry_after = _limited(await client.get("/v1/participants"))
        # Paying back 15 tokens of debt plus the next call's one, at 0.1 a second.
        assert retry_after >= math.floor((big - PROVIDER_BURST + 1) / PROVIDER_RATE) - 1


async def test_a_malformed_bulk_body_costs_one_call_and_casework_judges_it(
    limited: GatewayUnderTest,
) -> None:
    provider = await limited.partner("provider")
    async with limited.client(provider.api_key) as client:
        for body in (b"{not json", b"[1, 2, 3]", b'{"sessions": "many"}', b""):
            response = await client.post(
                "/v1/sessions/bulk", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200  # forwarded: the stand-in accepts anything
        for _ in range(PROVIDER_BURST - 4):
            assert (await client.get("/v1/participants")).status_code == 200
        _limited(await client.get("/v1/participants"))


async def test_a_kind_that_may_not_sync_is_refused_without_its_body_counted(
    limited: GatewayUnderTest,
) -> None:
    jcp = await limited.partner("jcp")
    async with limited.client(jcp.api_key) as client:
        response = await client.post("/v1/sessions/bulk", json=_bulk(500))
        assert response.status_code == 403
        # It cost one token, not 500: the rest of the burst is still there.
        for _ in range(REFERRER_BURST - 1):
            assert (await client.get("/v1/referrals")).status_code == 200
