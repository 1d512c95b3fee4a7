"""Applying one event live: log it, merge it into the facts, move the rollups.

For each event the affected participant (or referral) is locked and read, the event's
facts are merged, the participant is read again, and the difference of its
contributions (:func:`services.reporting.domain.contributions.delta`) is added to the
rollups. The rollups therefore always equal the sum of every contribution, whatever
order events arrive in.

Locks: a referral's events and its attachment take a transaction advisory lock on the
referral id first, then the participant row; everything else takes only the participant
row. One order everywhere, so handlers of one aggregate never deadlock each other.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain import facts as rules
from services.reporting.domain.contributions import (
    BARRIER_MEASURES,
    MEANS_MEASURES,
    PERFORMANCE_MEASURES,
    Contribution,
    delta,
    participant_contribution,
    referral_contribution,
)
from services.reporting.store import facts
from services.reporting.store.tables import (
    barrier_daily,
    barrier_means_daily,
    cohort_daily,
    event_log,
    performance_daily,
    rebuild_state,
)
from shared.events.casework import AssessmentRecorded, ParticipantAttached
from shared.events.envelope import Envelope, EventPayload
from shared.events.gateway import ProgrammeDefined
from shared.events.outcomes import AccrualRecorded, ClaimDecided
from shared.events.referrals import ReferralStatusChanged

# rollup name -> (table, key columns, measure columns); keys as in Contribution.
ROLLUPS = {
    "performance": (
        performance_daily,
        ("programme", "dim", "key", "day"),
        PERFORMANCE_MEASURES,
    ),
    "cohorts": (
        cohort_daily,
        ("programme", "attached_on", "months_to_job_start"),
        ("participants",),
    ),
    "barriers": (barrier_daily, ("programme", "barrier", "day"), BARRIER_MEASURES),
    "means": (barrier_means_daily, ("programme", "day"), MEANS_MEASURES),
}


def _additive_upsert(name: str) -> Insert:
    table, key_columns, measures = ROLLUPS[name]
    stmt = pg_insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )


_ADD_TO_ROLLUP = {name: _additive_upsert(name) for name in ROLLUPS}

# --- event log and rebuild gate ----------------------------------------------------------


_LOG_EVENT = pg_insert(event_log).on_conflict_do_nothing(index_elements=[event_log.c.event_id])
_REBUILDING = select(rebuild_state.c.in_progress).where(rebuild_state.c.id == 1)
_REBUILDING_HELD = _REBUILDING.with_for_update(read=True)


def _log_row(envelope: Envelope) -> dict:
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.type,
        "version": envelope.version,
        "occurred_at": envelope.occurred_at,
        "envelope": envelope.model_dump(mode="json"),
    }


async def log_event(session: AsyncSession, envelope: Envelope) -> None:
    await session.execute(_LOG_EVENT, [_log_row(envelope)])


async def log_events(session: AsyncSession, envelopes: list[Envelope]) -> None:
    await session.execute(_LOG_EVENT, [_log_row(e) for e in envelopes])


async def rebuild_in_progress(session: AsyncSession, *, hold: bool) -> bool:
    """Is a rebuild running? With ``hold``, keep a share lock on the answer until this
    transaction ends, so a rebuild cannot start or finish in between."""
    query = _REBUILDING_HELD if hold else _REBUILDING
    return bool((await session.execute(query)).scalar_one_or_none())


# --- rollups -------------------------------------------------------------------------------


async def add_to_rollups(session: AsyncSession, contribution: Contribution) -> None:
    """Add a contribution (or a delta) to the rollup rows, creating rows as needed."""
    for name, tally in contribution.tallies():
        if not tally:
            continue
        stmt = _ADD_TO_ROLLUP[name]
        _, key_columns, measures = ROLLUPS[name]
        # Sorted: concurrent writers then lock rows of one statement in the same order.
        rows = [
            dict(zip(key_columns, key, strict=True)) | dict(zip(measures, vector, strict=True))
            for key, vector in sorted(tally.items())
        ]
        await session.execute(stmt, rows)


# --- applying events -------------------------------------------------------------------------


async def apply(session: AsyncSession, envelope: Envelope, payload: EventPayload) -> None:
    """Apply one (already logged) event to the facts and rollups."""
    if isinstance(payload, ProgrammeDefined):
        await session.execute(facts.INSERT_PROGRAMME, [rules.programme_row(payload)])
    elif isinstance(payload, ReferralStatusChanged):
        await apply_referral_changes(session, [payload])
    elif isinstance(payload, ParticipantAttached):
        await _apply_attachment(session, payload)
    elif isinstance(payload, AssessmentRecorded):
        row = rules.assessment_row(payload, envelope.occurred_at)
        await _apply_to_participant(
            session, payload.participant_id, payload.programme, [(facts.INSERT_ASSESSMENT, row)]
        )
    elif isinstance(payload, ClaimDecided):
        await _apply_to_participant(
            session,
            payload.participant_id,
            payload.programme,
            [(facts.UPSERT_CLAIM, rules.claim_row(payload))],
            claims_changed=True,
        )
    elif isinstance(payload, AccrualRecorded):
        provider = {"participant_id": payload.participant_id, "provider_id": payload.provider_id}
        await _apply_to_participant(
            session,
            payload.participant_id,
            payload.programme,
            [
                (facts.PROVIDER_FROM_LEDGER, provider),
                (facts.INSERT_ACCRUAL, rules.accrual_row(payload)),
            ],
        )
    else:  # pragma: no cover - SUBSCRIPTIONS lists exactly the types above
        raise TypeError(f"reporting does not project {type(payload).__name__}")


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(k) "
    "FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS l(k, n) ORDER BY n"
)


def _referral_lock_key(referral_id: uuid.UUID) -> int:
    return int.from_bytes(referral_id.bytes[:8], "big", signed=True)


async def _lock_referral(session: AsyncSession, referral_id: uuid.UUID) -> None:
    await session.execute(_ADVISORY_LOCK, {"key": _referral_lock_key(referral_id)})


async def apply_referral_changes(
    session: AsyncSession, payloads: list[ReferralStatusChanged]
) -> None:
    """A run of referral status events, set-based: the same end state and rollups as
    applying them one by one (the facts' merges converge in any order, and the deltas
    of one referral's successive states add up to the delta from first to last), with
    a fixed handful of statements however long the run."""
    ids = sorted({p.referral_id for p in payloads})
    # Sorted, as every handler of this service takes several: no deadlock among them.
    keys = sorted({_referral_lock_key(i) for i in ids})
    await session.execute(_ADVISORY_LOCKS, {"keys": keys})
    before = await facts.load_referrals(session, ids, lock=True)
    # One upsert cannot touch a row twice: the k-th event of each referral goes in the
    # k-th statement (usually two: received, then the decision).
    layers: list[list[dict]] = []
    seen: dict[uuid.UUID, int] = {}
    for payload in payloads:
        k = seen.get(payload.referral_id, 0)
        seen[payload.referral_id] = k + 1
        if k == len(layers):
            layers.append([])
        layers[k].append(rules.referral_row(payload))
    for layer in layers:
        await session.execute(
            facts.UPSERT_REFERRAL, sorted(layer, key=lambda row: row["referral_id"])
        )
    after = await facts.load_referrals(session, ids)
    change = Contribution()
    for referral_id in ids:
        change.add(referral_contribution(after.get(referral_id)))
        change.add(referral_contribution(before.get(referral_id)), -1)
    # First news of a referral: a participant attached from it (event already here)
    # now learns its local authority, benefit, gender, age band and source.
    first_news = [i for i in ids if i not in before]
    for participant_id in await facts.participants_attached_from(session, first_news):
        was = await facts.load_participant(session, participant_id, lock=True)
        await facts.refresh_referral_dimensions(session, participant_id=participant_id)
        now = await facts.load_participant(session, participant_id)
        change.add(delta(participant_contribution(was), participant_contribution(now)))
    await add_to_rollups(session, change.without_zeros())


async def _apply_attachment(session: AsyncSession, payload: ParticipantAttached) -> None:
    await _lock_referral(session, payload.referral_id)
    await _apply_to_participant(
        session,
        payload.participant_id,
        payload.programme,
        [(facts.UPSERT_ATTACHMENT, rules.attachment_row(payload))],
        copy_referral_groups=True,
    )


async def _apply_to_participant(
    session: AsyncSession,
    participant_id: uuid.UUID,
    programme: str,
    writes: list,
    *,
    claims_changed: bool = False,
    copy_referral_groups: bool = False,
) -> None:
    before = await facts.load_participant(session, participant_id, lock=True)
    if before is None:  # first news of this participant: make its row (and lock it)
        await session.execute(
            facts.INSERT_PARTICIPANT_STUB,
            [{"participant_id": participant_id, "programme": programme}],
        )
        before = await facts.load_participant(session, participant_id, lock=True)
    for statement, params in writes:
        await session.execute(statement, [params])
    if claims_changed:
        await facts.refresh_claim_dates(session, participant_id)
    if copy_referral_groups:
        await facts.refresh_referral_dimensions(session, participant_id=participant_id)
    after = await facts.load_participant(session, participant_id)
    await add_to_rollups(
        session, delta(participant_contribution(before), participant_contribution(after))
    )
