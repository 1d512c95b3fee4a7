"""A poison event: one reporting cannot apply however often it tries (here a constraint
that refuses one programme's referrals stands in for a bug). It is retried, then
dead-lettered to ``pathways.reporting.dlq``, counted on /metrics, and every other event
keeps flowing. After the fix, the documented command ``pathways dlq redrive reporting``
puts it back, and it is applied, once."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.reliability.conftest import FaultyPlatform, Programme
from tests.reliability.flow import refer, wait_report, wait_settled
from tests.support.events import eventually

pytestmark = pytest.mark.platform

PATHWAYS = str(Path(sys.executable).with_name("pathways"))


async def pathways_cli(faulty: FaultyPlatform, *args: str) -> str:
    """Run the ``pathways`` command as an operator would, against this platform's broker."""
    vhost = faulty.platform.sandbox.vhost
    env = {**os.environ, "PATHWAYS_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost)}"}
    process = await asyncio.create_subprocess_exec(
        PATHWAYS,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_a_poison_event_is_dead_lettered_then_redriven_after_the_fix(
    faulty: FaultyPlatform, programme: Programme
) -> None:
    poisoned = Programme(
        (await faulty.gateway.define_programme({programme.provider: ["Wigan"]}))["code"],
        programme.referrer,
        programme.provider,
        programme.office,
    )
    constraint = f"reliability_poison_{secrets.token_hex(3)}"
    dead_before = await faulty.metric("reporting", "events_dead_lettered_total")
    await faulty.fetchval(
        f"ALTER TABLE reporting.referrals ADD CONSTRAINT {constraint}"
        f" CHECK (programme <> '{poisoned.code}') NOT VALID"
    )
    try:
        async with programme.referrer.client() as referrer:
            bad = [await refer(referrer, poisoned.code) for _ in range(2)]
            good = [await refer(referrer, programme.code) for _ in range(3)]
            await wait_settled(referrer, bad + good)

        # The rest flow: the healthy programme is reported in full.
        await wait_report(programme, {"referrals": 3, "accepted": 3})

        async def dead_lettered() -> None:
            dead = await faulty.metric("reporting", "events_dead_lettered_total")
            assert dead - dead_before >= len(bad)
            assert await faulty.metric("reporting", "dead_letter_queue_depth") >= len(bad)

        await eventually(dead_lettered, timeout=30, interval=0.5)
        listed = await pathways_cli(faulty, "dlq", "list", "reporting")
        assert "referrals.referral.status_changed" in listed, listed
        assert "attempts=" in listed
        # Nothing of the poisoned programme was half-applied meanwhile.
        async with programme.office.client() as office:
            report = await office.get(
                "/v1/reports/performance", params={"programme": poisoned.code}
            )
        assert report.json()["rows"][0]["referrals"] == 0, report.text
    finally:
        await faulty.fetchval(f"ALTER TABLE reporting.referrals DROP CONSTRAINT {constraint}")

    # The fix is in: re-drive, and every dead letter is applied once.
    redriven = await pathways_cli(faulty, "dlq", "redrive", "reporting")
    assert "re-drove" in redriven and "re-drove 0 " not in redriven, redriven
    await wait_report(poisoned, {"referrals": 2, "accepted": 2})
    assert "no dead letters for reporting" in await pathways_cli(faulty, "dlq", "list", "reporting")
    await wait_report(programme, {"referrals": 3, "accepted": 3})
