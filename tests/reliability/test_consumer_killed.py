"""A consumer process SIGKILLed in the middle of a stream of events, then restarted by
the supervisor: every event is applied exactly once (the inbox records each event in
the transaction that applies it, and an unacknowledged delivery comes back)."""

from __future__ import annotations

import signal

import pytest

from tests.reliability.conftest import FaultyPlatform, Programme
from tests.reliability.flow import attach_and_employ, refer, wait_report, wait_settled
from tests.support.events import eventually

pytestmark = pytest.mark.platform

STREAM = 30


async def test_killed_consumers_apply_every_event_exactly_once(
    faulty: FaultyPlatform, programme: Programme
) -> None:
    supervisor = faulty.platform.supervisor
    victims = ("reporting", "casework")
    restarts = {s: supervisor.children[s].restarts for s in victims}
    ids: list[str] = []
    async with programme.referrer.client() as referrer:
        for n in range(STREAM):
            ids.append(await refer(referrer, programme.code, eligible=n % 5 != 0))
            # Mid-stream, with events in flight: no goodbye, no ack, no commit.
            if n == STREAM // 3:
                supervisor.signal_child("reporting", signal.SIGKILL)
            if n == 2 * STREAM // 3:
                supervisor.signal_child("casework", signal.SIGKILL)

        async def restarted() -> None:
            assert all(supervisor.children[s].restarts == restarts[s] + 1 for s in victims)

        await eventually(restarted, timeout=30)
        await faulty.wait_ready(*victims)
        seen = await wait_settled(referrer, ids)
    accepted = [i for i in ids if seen[i] == "accepted"]
    assert len(accepted) == STREAM - STREAM // 5

    # Reporting counted each referral and each acceptance once.
    await wait_report(programme, {"referrals": STREAM, "accepted": len(accepted)})

    # Casework has heard of every referral (one record each), and each accepted one can
    # be attached, exactly once.
    async def casework_caught_up() -> None:
        count = await faulty.fetchval(
            f"SELECT count(*) FROM casework.referrals WHERE programme = '{programme.code}'"
        )
        assert count == STREAM

    await eventually(casework_caught_up, timeout=60, interval=0.5)
    async with programme.provider.client() as provider:
        participants = [(await attach_and_employ(provider, i))[0] for i in accepted]
    assert len(set(participants)) == len(accepted)
    await wait_report(programme, {"attachments": len(accepted)})
