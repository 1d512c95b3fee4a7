"""Sessions sync through the gateway: ``POST /v1/sessions/bulk`` in 1,000-item batches as
the provider's CRM, with its API key.

The participants are made the way a partner makes them (referred by the Jobcentre,
attached by the provider, both through the gateway); the batches are built and sent by
:mod:`bench.sessions_sync`'s load generator in its own process, every body built
before the clock starts.
"""

from __future__ import annotations

import asyncio
from typing import Any

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
                referred = await referrer.post("/v1/referrals", json=referral_body(bench.programme))
                if referred.status_code != 201:
                    raise RuntimeError(f"seed referral: {referred.status_code} {referred.text}")
                # Casework waits for the acceptance event if it has not arrived (§8).
                attached = await provider.post(
                    "/v1/participants",
                    json={
                        "referral_id": referred.json()["id"],
                        "attached_on": "2024-02-20",
                        "key_worker": "kw-bench",
                    },
                )
                if attached.status_code not in (200, 201):
                    raise RuntimeError(f"seed attach: {attached.status_code} {attached.text}")
                return str(attached.json()["id"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


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
