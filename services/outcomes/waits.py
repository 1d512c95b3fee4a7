"""The bounded wait for facts: claims still waiting when it ends are decided on what is
known. A background loop of the service (one per process; replicas share the work,
since each participant is settled under its lock and a decided claim is not waiting)."""

from __future__ import annotations

import asyncio
import uuid

from services.outcomes import decisions, store
from services.outcomes.settings import OutcomesSettings
from shared.db import is_database_unavailable
from shared.logging import get_logger
from shared.service import ServiceRuntime

log = get_logger(__name__)

BATCH = 100
CONCURRENCY = 4


async def decide_expired_waits(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, OutcomesSettings)
    assert runtime.outbox is not None
    while True:
        await asyncio.sleep(settings.claim_wait_poll_seconds)
        try:
            # A full round means more may be waiting: go again without sleeping.
            while await decide_expired_once(runtime) >= BATCH:
                pass
        except Exception as exc:
            # Nothing is lost: the claims stay waiting and the next round tries again.
            log.warning(
                "deciding expired claim waits failed; will retry",
                error=type(exc).__name__,
                database_unavailable=is_database_unavailable(exc),
            )


async def decide_expired_once(runtime: ServiceRuntime) -> int:
    """One round: settle each participant with an expired wait, one transaction each.
    Returns how many participants it looked at."""
    outbox = runtime.outbox
    assert outbox is not None
    now = decisions.utcnow()
    async with runtime.session_factory() as session:
        participant_ids = await store.participants_with_expired_waits(session, now, BATCH)
    # Participants are independent (each settled under its own lock): a few at a time.
    gate = asyncio.Semaphore(CONCURRENCY)

    async def settle(participant_id: uuid.UUID) -> int:
        async with gate, runtime.session_factory() as session, session.begin():
            await store.lock_participant(session, participant_id)
            return await decisions.settle_participant(
                session, outbox, participant_id, now=decisions.utcnow()
            )

    decided = sum(await asyncio.gather(*(settle(p) for p in participant_ids)))
    if decided:
        log.info("claims decided after their wait for facts", count=decided)
    return len(participant_ids)
