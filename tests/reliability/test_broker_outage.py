"""RabbitMQ unreachable for a while in the middle of a burst of referrals and claims.

Partners are not refused (the outbox keeps every event in PostgreSQL), and once the
broker is back every referral is decided, every claim decided, and the performance
report counts each exactly once: nothing lost, nothing doubled.
"""

from __future__ import annotations

import pytest

from tests.reliability.conftest import FaultyPlatform, Programme
from tests.reliability.flow import (
    attach_and_employ,
    claim_job_start,
    refer,
    wait_claims_decided,
    wait_report,
    wait_settled,
)
from tests.support.events import eventually

pytestmark = pytest.mark.platform

TARIFF_ATTACHMENT = 30000
TARIFF_JOB_START = 120000


async def test_a_broker_outage_loses_and_doubles_nothing(
    faulty: FaultyPlatform, programme: Programme
) -> None:
    async with programme.referrer.client() as referrer, programme.provider.client() as provider:
        # Before: people attached with a job each, ready to be claimed for.
        ready = [await refer(referrer, programme.code) for _ in range(6)]
        await wait_settled(referrer, ready)
        jobs = [await attach_and_employ(provider, referral_id) for referral_id in ready]
        # Reporting has seen the attachments (so the later counts isolate the burst).
        await wait_report(programme, {"referrals": 6, "accepted": 6, "attachments": 6})

        await faulty.broker_proxy.cut()
        try:
            eligible = [await refer(referrer, programme.code) for _ in range(12)]
            ineligible = [await refer(referrer, programme.code, eligible=False) for _ in range(4)]
            claims = [await claim_job_start(provider, pid, job) for pid, job in jobs]
            # The outage lasts a while: the outboxes hold the events meanwhile, and say so
            # on /metrics.
            assert await faulty.unpublished() > 0

            async def backlog_shown() -> None:
                assert await faulty.metric("referrals", "outbox_backlog") > 0

            await eventually(backlog_shown, timeout=20, interval=0.5)
        finally:
            faulty.broker_proxy.restore()

        seen = await wait_settled(referrer, eligible + ineligible)
        assert {seen[i] for i in eligible} == {"accepted"}
        assert {seen[i] for i in ineligible} == {"rejected"}
        decided = await wait_claims_decided(provider, claims)
        assert set(decided.values()) == {"validated"}
        # Every new acceptance reached casework: each can be attached, exactly once.
        for referral_id in eligible[:3]:
            await attach_and_employ(provider, referral_id)

    await wait_report(
        programme,
        {
            "referrals": 22,
            "accepted": 18,
            "attachments": 9,
            "job_starts": 6,
            "accrued_pence": 9 * TARIFF_ATTACHMENT + 6 * TARIFF_JOB_START,
        },
    )
    await faulty.wait_ready()

    async def drained() -> None:
        assert await faulty.unpublished() == 0

    await eventually(drained, timeout=30)
