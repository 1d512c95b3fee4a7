"""Events into facts: order-tolerant upserts, and reading facts back for the rules.

The same statements serve the live projector (one row at a time) and the rebuild (many
rows per round trip), so both reach the same facts. Each merge converges whatever order
an aggregate's events arrive in:

* a referral's dimensions are the same in every event; ``provider_id`` is kept once
  known; the status is the one with the latest ``(changed_at, lifecycle step)``;
  "ever accepted" and "ever duplicate" are flags that stay set;
* a participant row is made by whichever of its events comes first; the attachment
  fills in programme, provider, referral and ``attached_on`` (once);
* a claim's status is the one with the latest ``(decided_at, step)``; the participant's
  job start and sustainment dates are its earliest validated claims of each type;
* ledger lines and assessments never change, so they are inserted once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Insert, bindparam, case, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain.facts import (
    REFERRAL_DIMENSIONS,
    Assessment,
    ParticipantFacts,
    ReferralFacts,
)
from services.reporting.store.tables import (
    accruals,
    assessments,
    claims,
    participants,
    programmes,
    referrals,
)


def _insert_programme() -> Insert:
    # Definitions never change once made (gateway.programme.defined).
    return pg_insert(programmes).on_conflict_do_nothing(index_elements=[programmes.c.code])


def _upsert_referral() -> Insert:
    stmt = pg_insert(referrals)
    new, old = stmt.excluded, referrals.c
    newer = tuple_(new.status_changed_at, new.status_rank) > tuple_(
        old.status_changed_at, old.status_rank
    )
    return stmt.on_conflict_do_update(
        index_elements=[old.referral_id],
        set_={
            "provider_id": func.coalesce(old.provider_id, new.provider_id),
            "status": case((newer, new.status), else_=old.status),
            "status_rank": case((newer, new.status_rank), else_=old.status_rank),
            "status_changed_at": case((newer, new.status_changed_at), else_=old.status_changed_at),
            "ever_accepted": old.ever_accepted | new.ever_accepted,
            "ever_duplicate": old.ever_duplicate | new.ever_duplicate,
        },
    )


def _insert_participant_stub() -> Insert:
    """The participant's row, if no event has made it yet (its lock is then taken)."""
    return pg_insert(participants).on_conflict_do_nothing(
        index_elements=[participants.c.participant_id]
    )


def _upsert_attachment() -> Insert:
    stmt = pg_insert(participants)
    new, old = stmt.excluded, participants.c
    return stmt.on_conflict_do_update(
        index_elements=[old.participant_id],
        set_={
            "programme": new.programme,
            "provider_id": new.provider_id,
            "referral_id": new.referral_id,
            "attached_on": new.attached_on,
        },
        # An attachment happens once; a redelivered copy changes nothing.
        where=old.attached_on.is_(None),
    )


# A ledger line names the provider the participant belongs to: useful for grouping by
# provider before the attachment event arrives (which then sets it for good).
PROVIDER_FROM_LEDGER = text(
    "UPDATE participants SET provider_id = :provider_id "
    "WHERE participant_id = :participant_id AND provider_id IS NULL AND attached_on IS NULL"
)


def _upsert_claim() -> Insert:
    stmt = pg_insert(claims)
    new, old = stmt.excluded, claims.c
    newer = tuple_(new.decided_at, new.status_rank) > tuple_(old.decided_at, old.status_rank)
    return stmt.on_conflict_do_update(
        index_elements=[old.claim_id],
        set_={
            c: new[c]
            for c in (
                "participant_id",
                "programme",
                "type",
                "status",
                "status_rank",
                "achieved_on",
                "decided_at",
            )
        },
        where=newer,
    )


def _insert_accrual() -> Insert:
    return pg_insert(accruals).on_conflict_do_nothing(index_elements=[accruals.c.line_id])


def _insert_assessment() -> Insert:
    return pg_insert(assessments).on_conflict_do_nothing(
        index_elements=[assessments.c.assessment_id]
    )


# Built once: statements are immutable, and building them per event costs more than
# running them.
INSERT_PROGRAMME = _insert_programme()
UPSERT_REFERRAL = _upsert_referral()
INSERT_PARTICIPANT_STUB = _insert_participant_stub()
UPSERT_ATTACHMENT = _upsert_attachment()
UPSERT_CLAIM = _upsert_claim()
INSERT_ACCRUAL = _insert_accrual()
INSERT_ASSESSMENT = _insert_assessment()

_CLAIM_DATES = """
    UPDATE participants p SET
      job_start_on = d.job_start_on,
      sustained_13_on = d.sustained_13_on,
      sustained_26_on = d.sustained_26_on,
      sustained_50_on = d.sustained_50_on
    FROM (
      SELECT pp.participant_id,
        min(c.achieved_on) FILTER (WHERE c.type = 'job_start') AS job_start_on,
        min(c.achieved_on) FILTER (WHERE c.type = 'sustained_13') AS sustained_13_on,
        min(c.achieved_on) FILTER (WHERE c.type = 'sustained_26') AS sustained_26_on,
        min(c.achieved_on) FILTER (WHERE c.type = 'sustained_50') AS sustained_50_on
      FROM participants pp
      LEFT JOIN claims c ON c.participant_id = pp.participant_id AND c.status = 'validated'
      {where}
      GROUP BY pp.participant_id
    ) d
    WHERE p.participant_id = d.participant_id
      AND (p.job_start_on, p.sustained_13_on, p.sustained_26_on, p.sustained_50_on)
          IS DISTINCT FROM
          (d.job_start_on, d.sustained_13_on, d.sustained_26_on, d.sustained_50_on)
"""

_CLAIM_DATES_ALL = text(_CLAIM_DATES.format(where=""))
_CLAIM_DATES_ONE = text(_CLAIM_DATES.format(where="WHERE pp.participant_id = :pid"))


async def refresh_claim_dates(session: AsyncSession, participant_id: uuid.UUID | None) -> None:
    """Set participants' job start and sustainment dates from their validated claims
    (one participant, or every one when rebuilding)."""
    if participant_id is None:
        await session.execute(_CLAIM_DATES_ALL)
    else:
        await session.execute(_CLAIM_DATES_ONE, {"pid": participant_id})


_DIMENSIONS = ", ".join(f"{d} = r.{d}" for d in REFERRAL_DIMENSIONS)
_REFERRAL_DIMENSIONS = f"""
    UPDATE participants p SET {_DIMENSIONS}
    FROM referrals r
    WHERE r.referral_id = p.referral_id {{where}}
"""

_DIMENSIONS_OF_PARTICIPANT = text(_REFERRAL_DIMENSIONS.format(where="AND p.participant_id = :id"))
_DIMENSIONS_OF_REFERRAL = text(_REFERRAL_DIMENSIONS.format(where="AND p.referral_id = :id"))
_DIMENSIONS_ALL = text(_REFERRAL_DIMENSIONS.format(where=""))


async def refresh_referral_dimensions(
    session: AsyncSession,
    *,
    participant_id: uuid.UUID | None = None,
    referral_id: uuid.UUID | None = None,
) -> None:
    """Copy referral dimensions onto participants (one, a referral's, or all)."""
    if participant_id is not None:
        await session.execute(_DIMENSIONS_OF_PARTICIPANT, {"id": participant_id})
    elif referral_id is not None:
        await session.execute(_DIMENSIONS_OF_REFERRAL, {"id": referral_id})
    else:
        await session.execute(_DIMENSIONS_ALL)


# --- reading facts back -------------------------------------------------------------------

PARTICIPANT_STATE = """
    SELECT p.participant_id, p.programme, p.provider_id, p.referral_id, p.attached_on,
      p.job_start_on, p.sustained_13_on, p.sustained_26_on, p.sustained_50_on,
      p.local_authority, p.source, p.benefit, p.gender, p.age_band,
      (SELECT jsonb_agg(jsonb_build_array(a.accrued_on, a.lines, a.pence))
         FROM (SELECT accrued_on, count(*) AS lines, sum(amount_pence) AS pence
                 FROM accruals WHERE participant_id = p.participant_id
                 GROUP BY accrued_on) a) AS accrual_days,
      (SELECT jsonb_agg(jsonb_build_array(s.assessment_id, s.kind, s.assessed_on,
                                          s.recorded_at, s.barriers))
         FROM assessments s WHERE s.participant_id = p.participant_id) AS assessment_list
    FROM participants p
"""

_READ_PARTICIPANT = text(PARTICIPANT_STATE + " WHERE p.participant_id = :pid")
_LOCK_PARTICIPANT = text(PARTICIPANT_STATE + " WHERE p.participant_id = :pid FOR UPDATE OF p")


async def load_participant(
    session: AsyncSession, participant_id: uuid.UUID, *, lock: bool = False
) -> ParticipantFacts | None:
    query = _LOCK_PARTICIPANT if lock else _READ_PARTICIPANT
    row = (await session.execute(query, {"pid": participant_id})).mappings().first()
    return participant_facts(row) if row is not None else None


def participant_facts(row: Any) -> ParticipantFacts:
    sustained = {
        weeks: row[f"sustained_{weeks}_on"]
        for weeks in (13, 26, 50)
        if row[f"sustained_{weeks}_on"] is not None
    }
    dimensions = {d: row[d] for d in REFERRAL_DIMENSIONS if row[d]}
    accrual_days = {
        date.fromisoformat(day): (int(lines), int(pence))
        for day, lines, pence in _json(row["accrual_days"]) or []
    }
    assessment_list = tuple(
        Assessment(
            assessment_id=uuid.UUID(aid),
            kind=kind,
            assessed_on=date.fromisoformat(on),
            recorded_at=datetime.fromisoformat(at),
            barriers={k: int(v) for k, v in barriers.items()},
        )
        for aid, kind, on, at, barriers in _json(row["assessment_list"]) or []
    )
    return ParticipantFacts(
        participant_id=row["participant_id"],
        programme=row["programme"],
        provider_id=row["provider_id"],
        referral_id=row["referral_id"],
        attached_on=row["attached_on"],
        job_start_on=row["job_start_on"],
        sustained_on=sustained,
        referral_dimensions=dimensions,
        accruals=accrual_days,
        assessments=assessment_list,
    )


_READ_REFERRAL = referrals.select().where(referrals.c.referral_id == bindparam("id"))
_LOCK_REFERRAL = _READ_REFERRAL.with_for_update()
_READ_REFERRALS = (
    referrals.select()
    .where(referrals.c.referral_id == func.any(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))))
    .order_by(referrals.c.referral_id)
)
_LOCK_REFERRALS = _READ_REFERRALS.with_for_update()


async def load_referral(
    session: AsyncSession, referral_id: uuid.UUID, *, lock: bool = False
) -> ReferralFacts | None:
    query = _LOCK_REFERRAL if lock else _READ_REFERRAL
    row = (await session.execute(query, {"id": referral_id})).mappings().first()
    return referral_facts(row) if row is not None else None


async def load_referrals(
    session: AsyncSession, referral_ids: Sequence[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, ReferralFacts]:
    """Several referrals at once (locked in id order, with ``lock``); absent ones are
    left out."""
    query = _LOCK_REFERRALS if lock else _READ_REFERRALS
    rows = (await session.execute(query, {"ids": list(referral_ids)})).mappings()
    return {row["referral_id"]: referral_facts(row) for row in rows}


_WAITING_FOR_REFERRALS = (
    select(participants.c.participant_id)
    .where(
        participants.c.referral_id == func.any(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
    )
    .order_by(participants.c.participant_id)
)


async def participants_attached_from(
    session: AsyncSession, referral_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Participants already attached from any of these referrals, in id order."""
    if not referral_ids:
        return []
    found = await session.execute(_WAITING_FOR_REFERRALS, {"ids": list(referral_ids)})
    return list(found.scalars())


def referral_facts(row: Any) -> ReferralFacts:
    return ReferralFacts(
        referral_id=row["referral_id"],
        programme=row["programme"],
        referred_on=row["referred_on"],
        source=row["source"],
        local_authority=row["local_authority"],
        benefit=row["benefit"],
        gender=row["gender"],
        age_band=row["age_band"],
        provider_id=row["provider_id"],
        ever_accepted=row["ever_accepted"],
        ever_duplicate=row["ever_duplicate"],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
