"""Sessions sync through the gateway: ``POST /v1/sessions/bulk`` in 1,000-item batches as
the provider's CRM, with its API key.

The participants are made the way a partner makes them (referred by the Jobcentre,
attached by the provider, both through the gateway); the batches are built and sent by
:mod:`bench.sessions_sync`'s load generator in its own process, every body built
before the clock starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench import sessions_sync
from bench.harness import Bench
from tests.support.builders import referral_body

SEED_CONCURRENCY = 8


async def seed_participants(bench: Bench, count: int) -> list[str]:
    """``count`` participants of the bench provider: referred, accepted, attached."""
    limit = asyncio.Semaphore(SEED_CONCURRENCY)
    async with bench.referrer.client() as referrer, bench.provider.client() as provider:

        async def one() -> str:
            async with limit:
                body = referral_body(bench.programme)
                referred = await _retrying(lambda: referrer.post("/v1/referrals", json=body))
                if referred.status_code not in (200, 201):
                    raise RuntimeError(f"seed referral: {referred.status_code} {referred.text}")
                bench.referrals_sent += 1
                # Casework waits for the acceptance event if it has not arrived (§8).
                attach = {
                    "referral_id": referred.json()["id"],
                    "attached_on": "2024-02-20",
                    "key_worker": "kw-bench",
                }
                attached = await _retrying(lambda: provider.post("/v1/participants", json=attach))
                if attached.status_code not in (200, 201):
                    raise RuntimeError(
                        f"seed attach of a referral answered {referred.json()['status']!r}: "
                        f"{attached.status_code} {attached.text}"
                    )
                return str(attached.json()["id"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def _retrying(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Retry a 5xx as a partner would (both calls are idempotent, contract §2-3): on a
    machine shared with test runs PostgreSQL's connection slots can run out for a moment."""
    for attempt in range(4):
        response = await call()
        if response.status_code < 500:
            return response
        await asyncio.sleep(0.5 * 2**attempt)
    return response


async def sync_run(
    bench: Bench, participants: list[str], *, batches: int, concurrency: int, tag: str, seed: int
) -> dict[str, Any]:
    """One run of ``batches`` batches of new sessions; sessions/s, batch p50/p95."""
    spec = {
        "url": bench.gateway_url,
        "api_key": bench.provider.api_key,
        "participants": participants,
        "batches": batches,
        "scenario": "create",
        "prefix": tag,
        "seed": seed,
        "edit": 0,
        "concurrency": concurrency,
    }
    result = await asyncio.to_thread(sessions_sync.run_load, spec)
    if set(result["statuses"]) != {"created"}:
        raise RuntimeError(f"sessions sync: unexpected item statuses {result['statuses']}")
    return result
