"""PostgreSQL connections cut under a running service process, then restored: meanwhile
the service answers 503 problem+json (through the gateway, and on /ready), and once the
database is back it serves again by itself: same process, no restart."""

from __future__ import annotations

import httpx
import pytest

from tests.reliability.conftest import FaultyPlatform, Programme
from tests.reliability.flow import attach_and_employ, refer, wait_report, wait_settled
from tests.support.events import eventually

pytestmark = pytest.mark.platform


async def test_casework_answers_503_while_its_database_is_away_and_recovers(
    faulty: FaultyPlatform, programme: Programme
) -> None:
    casework = faulty.platform.supervisor.children["casework"]
    pid_before, restarts_before = casework.pid, casework.restarts
    async with programme.referrer.client() as referrer, programme.provider.client() as provider:
        first = await refer(referrer, programme.code)
        await wait_settled(referrer, [first])
        participant_id, _ = await attach_and_employ(provider, first)
        second = await refer(referrer, programme.code)
        await wait_settled(referrer, [second])

        await faulty.casework_db_proxy.cut()
        try:
            read = await provider.get(f"/v1/participants/{participant_id}")
            assert read.status_code == 503, read.text
            assert read.headers["content-type"] == "application/problem+json"
            assert read.json()["status"] == 503
            write = await provider.post(
                "/v1/participants",
                json={"referral_id": second, "attached_on": "2024-02-20", "key_worker": "kw"},
            )
            assert write.status_code == 503, write.text
            assert write.headers["content-type"] == "application/problem+json"
            async with httpx.AsyncClient(timeout=10) as direct:
                ready = await direct.get(f"{faulty.url('casework')}/ready")
            assert ready.status_code == 503
            # The other services carry on.
            assert (await referrer.get(f"/v1/referrals/{first}")).status_code == 200
        finally:
            faulty.casework_db_proxy.restore()

        async def served_again() -> None:
            response = await provider.get(f"/v1/participants/{participant_id}")
            assert response.status_code == 200, response.text

        await eventually(served_again, timeout=30, interval=0.3)
        # The refused attachment left nothing behind: it goes through now, once.
        await attach_and_employ(provider, second)
    assert (casework.pid, casework.restarts) == (pid_before, restarts_before)
    await faulty.wait_ready("casework")
    await wait_report(programme, {"referrals": 2, "attachments": 2})
