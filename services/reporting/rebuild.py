"""Rebuild: drop the projections and replay every event the service has received.

``pathways reports rebuild`` restates the projections after a fix to the rules, or to
prove they are what the event log says. It runs beside the live consumer:

1. Mark the rebuild in progress. The marker's row lock waits for every handler
   transaction in flight, so every event logged so far is committed; remember the last
   ``seq``. From now on handlers only log events (they hold a share lock on the marker
   while they do), and reports answer ``503`` with ``Retry-After``.
2. In one transaction: truncate the projections; replay the log up to that ``seq`` into
   the facts with the projector's own upserts, many rows per round trip, in ``seq``
   order; derive participants' dates and groups; sum every contribution into the rollups.
3. Still in that transaction, lock the marker (waiting for handlers logging right now),
   apply the events logged during the rebuild one by one exactly as the live consumer
   would, clear the marker and commit. Handlers waiting on the marker then carry on
   live against the rebuilt projections.

The facts merge order-tolerantly and the rollups are the sum of contributions, so the
result is the state the live consumer reached (the rebuild test compares every report).
If the rebuild fails, its transaction rolls back, the marker stays set (handlers keep
logging, reports keep answering ``503``) and running it again finishes the job.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from services.reporting.domain import facts as rules
from services.reporting.domain.contributions import (
    Contribution,
    participant_contribution,
    referral_contribution,
)
from services.reporting.store import facts, projector
from services.reporting.store.tables import (
    PROJECTION_TABLES,
    SCHEMA,
    event_log,
    rebuild_state,
    referrals,
)
from shared.events.casework import AssessmentRecorded, ParticipantAttached
from shared.events.envelope import Envelope, parse_payload
from shared.events.gateway import ProgrammeDefined
from shared.events.outcomes import AccrualRecorded, ClaimDecided
from shared.events.referrals import ReferralStatusChanged

Progress = Callable[[str, int, int | None], None]
# Session-level advisory lock: one rebuild at a time.
REBUILD_LOCK = zlib.crc32(b"reporting.rebuild") & 0x7FFFFFFF
BATCH = 5000


class RebuildAlreadyRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class RebuildResult:
    events_replayed: int
    events_during_rebuild: int
    referrals: int
    participants: int
    seconds: float


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


async def rebuild(engine: AsyncEngine, *, progress: Progress = _quiet) -> RebuildResult:
    started = time.perf_counter()
    async with engine.connect() as conn:
        got = (
            await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REBUILD_LOCK})
        ).scalar_one()
        await conn.commit()
        if not got:
            raise RebuildAlreadyRunning("another rebuild of the reporting projections is running")
        try:
            high = await _mark_started(conn)
            result = await _rebuild_in_one_transaction(conn, high, progress)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REBUILD_LOCK})
            await conn.commit()
    return RebuildResult(**result, seconds=round(time.perf_counter() - started, 3))


async def _mark_started(conn: AsyncConnection) -> int:
    async with conn.begin():
        await conn.execute(
            select(rebuild_state.c.id).where(rebuild_state.c.id == 1).with_for_update()
        )
        await conn.execute(
            rebuild_state.update()
            .where(rebuild_state.c.id == 1)
            .values(in_progress=True, started_at=func.now(), finished_at=None)
        )
        return int(
            (await conn.execute(select(func.coalesce(func.max(event_log.c.seq), 0)))).scalar_one()
        )


async def _rebuild_in_one_transaction(
    conn: AsyncConnection, high: int, progress: Progress
) -> dict[str, Any]:
    async with AsyncSession(bind=conn) as session, session.begin():
        tables = ", ".join(f'"{SCHEMA}".{t.name}' for t in PROJECTION_TABLES)
        await session.execute(text(f"TRUNCATE {tables}"))
        replayed = await replay_facts(session, up_to=high, progress=progress)
        progress("deriving participants' dates and groups", 0, None)
        await facts.refresh_referral_dimensions(session)
        await facts.refresh_claim_dates(session, None)
        counts = await recompute_rollups(session, progress=progress)
        # Events handled while we worked were only logged: apply them now, as live.
        await session.execute(
            select(rebuild_state.c.id).where(rebuild_state.c.id == 1).with_for_update()
        )
        tail = (
            (
                await session.execute(
                    select(event_log.c.envelope)
                    .where(event_log.c.seq > high)
                    .order_by(event_log.c.seq)
                )
            )
            .scalars()
            .all()
        )
        for i, raw in enumerate(tail, start=1):
            envelope = Envelope.model_validate(raw)
            await projector.apply(session, envelope, parse_payload(envelope))
            progress("applying events received during the rebuild", i, len(tail))
        await session.execute(
            rebuild_state.update()
            .where(rebuild_state.c.id == 1)
            .values(in_progress=False, finished_at=func.now(), events_replayed=replayed + len(tail))
        )
    return {
        "events_replayed": replayed,
        "events_during_rebuild": len(tail),
        "referrals": counts[0],
        "participants": counts[1],
    }


async def replay_facts(session: AsyncSession, *, up_to: int, progress: Progress = _quiet) -> int:
    """Replay the event log (``seq <= up_to``, in order) into the fact tables."""
    total = (
        await session.execute(select(func.count()).where(event_log.c.seq <= up_to))
    ).scalar_one()
    done = 0
    last = 0
    while True:
        rows = (
            await session.execute(
                select(event_log.c.seq, event_log.c.envelope)
                .where(event_log.c.seq > last, event_log.c.seq <= up_to)
                .order_by(event_log.c.seq)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            break
        await _apply_facts(session, [Envelope.model_validate(r.envelope) for r in rows])
        last = rows[-1].seq
        done += len(rows)
        progress("replaying events", done, total)
    return done


async def _apply_facts(session: AsyncSession, envelopes: list[Envelope]) -> None:
    """The projector's fact statements for a batch of events, many rows per statement.

    Statements run in a fixed order whose result matches applying the events one by
    one: participant stubs before attachments (which fill a stub in), ledger providers
    after attachments (they only fill a provider no attachment has set).
    """
    batches: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "programme",
            "referral",
            "stub",
            "attachment",
            "provider",
            "claim",
            "accrual",
            "assessment",
        )
    }
    for envelope in envelopes:
        payload = parse_payload(envelope)
        if isinstance(payload, ProgrammeDefined):
            batches["programme"].append(rules.programme_row(payload))
        elif isinstance(payload, ReferralStatusChanged):
            batches["referral"].append(rules.referral_row(payload))
        elif isinstance(payload, ParticipantAttached):
            batches["attachment"].append(rules.attachment_row(payload))
        else:
            assert isinstance(payload, AssessmentRecorded | ClaimDecided | AccrualRecorded)
            batches["stub"].append(
                {"participant_id": payload.participant_id, "programme": payload.programme}
            )
            if isinstance(payload, AssessmentRecorded):
                batches["assessment"].append(rules.assessment_row(payload, envelope.occurred_at))
            elif isinstance(payload, ClaimDecided):
                batches["claim"].append(rules.claim_row(payload))
            else:
                batches["provider"].append(
                    {"participant_id": payload.participant_id, "provider_id": payload.provider_id}
                )
                batches["accrual"].append(rules.accrual_row(payload))
    statements = {
        "programme": facts.INSERT_PROGRAMME,
        "referral": facts.UPSERT_REFERRAL,
        "stub": facts.INSERT_PARTICIPANT_STUB,
        "attachment": facts.UPSERT_ATTACHMENT,
        "provider": facts.PROVIDER_FROM_LEDGER,
        "claim": facts.UPSERT_CLAIM,
        "accrual": facts.INSERT_ACCRUAL,
        "assessment": facts.INSERT_ASSESSMENT,
    }
    for name, rows in batches.items():
        if rows:
            await session.execute(statements[name], rows)


async def recompute_rollups(
    session: AsyncSession, *, programme: str | None = None, progress: Progress = _quiet
) -> tuple[int, int]:
    """Sum every referral's and participant's contribution into the (empty) rollups.

    Returns how many referrals and participants were summed.
    """
    total = Contribution()
    n_referrals = n_participants = 0
    query = referrals.select()
    if programme is not None:
        query = query.where(referrals.c.programme == programme)
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for row in result.mappings():
        referral_contribution(facts.referral_facts(row), into=total)
        n_referrals += 1
        if n_referrals % 50_000 == 0:
            progress("summing referrals", n_referrals, None)
    sql = facts.PARTICIPANT_STATE + (" WHERE p.programme = :programme" if programme else "")
    result = await session.stream(
        text(sql).execution_options(yield_per=BATCH), {"programme": programme} if programme else {}
    )
    async for row in result.mappings():
        participant_contribution(facts.participant_facts(row), into=total)
        n_participants += 1
        if n_participants % 50_000 == 0:
            progress("summing participants", n_participants, None)
    progress("writing rollups", 0, None)
    await projector.add_to_rollups(session, total.without_zeros())
    return n_referrals, n_participants
