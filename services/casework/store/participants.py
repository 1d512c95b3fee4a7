"""Participants, their key workers, assessments and employment episodes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, func, insert, literal_column, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import Attachment, ExistingParticipant, ParticipantStatus
from services.casework.store.tables import (
    assessments,
    employment_episodes,
    key_worker_assignments,
    participants,
    sessions,
)

# --- participants ------------------------------------------------------------------


async def participant(
    session: AsyncSession, participant_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    query = select(participants).where(participants.c.id == participant_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def participant_for_referral(
    session: AsyncSession, referral_id: uuid.UUID
) -> Row[Any] | None:
    return (
        await session.execute(select(participants).where(participants.c.referral_id == referral_id))
    ).first()


def existing_attachment(row: Row[Any]) -> ExistingParticipant:
    return ExistingParticipant(
        participant_id=row.id,
        provider_id=row.provider_id,
        attachment=Attachment(row.referral_id, row.attached_on, row.attached_key_worker),
    )


async def insert_participant(
    session: AsyncSession,
    *,
    participant_id: uuid.UUID,
    referral_id: uuid.UUID,
    programme: str,
    provider_id: uuid.UUID,
    referred_on: date,
    attached_on: date,
    key_worker: str,
) -> bool:
    """Insert the participant; ``False`` if another request attached the referral first."""
    created = (
        await session.execute(
            pg_insert(participants)
            .values(
                id=participant_id,
                referral_id=referral_id,
                programme=programme,
                provider_id=provider_id,
                referred_on=referred_on,
                attached_on=attached_on,
                key_worker=key_worker,
                attached_key_worker=key_worker,
                status=ParticipantStatus.ACTIVE,
            )
            .on_conflict_do_nothing(index_elements=[participants.c.referral_id])
            .returning(participants.c.id)
        )
    ).first()
    if created is None:
        return False
    await session.execute(
        insert(key_worker_assignments).values(
            participant_id=participant_id, key_worker=key_worker, assigned_on=attached_on
        )
    )
    return True


async def record_exit(
    session: AsyncSession, participant_id: uuid.UUID, *, left_on: date, reason: str
) -> None:
    await session.execute(
        update(participants)
        .where(participants.c.id == participant_id)
        .values(
            status=ParticipantStatus.EXITED,
            left_on=left_on,
            exit_reason=reason,
            updated_at=func.now(),
        )
    )


async def reassign_key_worker(
    session: AsyncSession, participant_id: uuid.UUID, *, key_worker: str, assigned_on: date
) -> None:
    await session.execute(
        update(participants)
        .where(participants.c.id == participant_id)
        .values(key_worker=key_worker, updated_at=func.now())
    )
    await session.execute(
        insert(key_worker_assignments).values(
            participant_id=participant_id, key_worker=key_worker, assigned_on=assigned_on
        )
    )


async def key_worker_history(session: AsyncSession, participant_id: uuid.UUID) -> list[Row[Any]]:
    rows = await session.execute(
        select(key_worker_assignments.c.key_worker, key_worker_assignments.c.assigned_on)
        .where(key_worker_assignments.c.participant_id == participant_id)
        .order_by(key_worker_assignments.c.id)
    )
    return list(rows)


# --- caseload ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseloadQuery:
    provider_id: uuid.UUID | None  # None: every provider's (programme office)
    programme: str | None = None
    key_worker: str | None = None
    status: str | None = None
    # Only those whose last contact (attended session, or attachment) is on or
    # before this date.
    contact_on_or_before: date | None = None
    after: tuple[date, uuid.UUID] | None = None  # keyset: (attached_on, id)
    limit: int = 50


def _last_attended():
    """The participant's latest attended session, one index probe per participant."""
    return (
        select(
            sessions.c.occurred_at.label("last_attended_at"),
            sessions.c.external_id.label("last_session_external_id"),
            sessions.c.kind.label("last_session_kind"),
            sessions.c.duration_minutes.label("last_session_minutes"),
        )
        .where(
            sessions.c.participant_id == participants.c.id,
            sessions.c.attendance == "attended",
        )
        .order_by(sessions.c.occurred_at.desc())
        .limit(1)
        .lateral("last_attended")
    )


async def caseload(session: AsyncSession, query: CaseloadQuery) -> list[Row[Any]]:
    """A page of participants with their last attended session, in attachment order."""
    last = _last_attended()
    statement = select(
        participants,
        last.c.last_attended_at,
        last.c.last_session_external_id,
        last.c.last_session_kind,
        last.c.last_session_minutes,
    ).select_from(participants.outerjoin(last, true()))
    conditions = []
    if query.provider_id is not None:
        conditions.append(participants.c.provider_id == query.provider_id)
    if query.programme is not None:
        conditions.append(participants.c.programme == query.programme)
    if query.key_worker is not None:
        conditions.append(participants.c.key_worker == query.key_worker)
    if query.status is not None:
        conditions.append(participants.c.status == query.status)
    if query.contact_on_or_before is not None:
        last_contact = func.greatest(
            func.coalesce(
                func.date(func.timezone("Europe/London", last.c.last_attended_at)),
                participants.c.attached_on,
            ),
            participants.c.attached_on,
        )
        conditions.append(last_contact <= query.contact_on_or_before)
    if query.after is not None:
        attached_on, last_id = query.after
        conditions.append(
            or_(
                participants.c.attached_on > attached_on,
                and_(participants.c.attached_on == attached_on, participants.c.id > last_id),
            )
        )
    statement = (
        statement.where(*conditions)
        .order_by(participants.c.attached_on, participants.c.id)
        .limit(query.limit)
    )
    return list(await session.execute(statement))


# --- employment --------------------------------------------------------------------


async def episodes_of(
    session: AsyncSession, participant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Row[Any]]]:
    """Every participant's employment episodes, oldest start first, in one query."""
    found: dict[uuid.UUID, list[Row[Any]]] = {pid: [] for pid in participant_ids}
    if not participant_ids:
        return found
    rows = await session.execute(
        select(employment_episodes)
        .where(employment_episodes.c.participant_id.in_(list(participant_ids)))
        .order_by(
            employment_episodes.c.started_on,
            employment_episodes.c.created_at,
            employment_episodes.c.id,
        )
    )
    for row in rows:
        found[row.participant_id].append(row)
    return found


async def episode(
    session: AsyncSession, participant_id: uuid.UUID, episode_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    query = select(employment_episodes).where(
        employment_episodes.c.id == episode_id,
        employment_episodes.c.participant_id == participant_id,
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def insert_episode(
    session: AsyncSession,
    *,
    episode_id: uuid.UUID,
    participant_id: uuid.UUID,
    employer: str,
    started_on: date,
    ended_on: date | None,
    hours_per_week: Decimal,
    weekly_earnings_pence: int | None,
    self_employed: bool,
) -> Row[Any]:
    return (
        await session.execute(
            insert(employment_episodes)
            .values(
                id=episode_id,
                participant_id=participant_id,
                employer=employer,
                started_on=started_on,
                ended_on=ended_on,
                hours_per_week=hours_per_week,
                weekly_earnings_pence=weekly_earnings_pence,
                self_employed=self_employed,
            )
            .returning(*employment_episodes.c)
        )
    ).one()


async def end_episode(session: AsyncSession, episode_id: uuid.UUID, ended_on: date) -> Row[Any]:
    return (
        await session.execute(
            update(employment_episodes)
            .where(employment_episodes.c.id == episode_id)
            .values(ended_on=ended_on, updated_at=func.now())
            .returning(*employment_episodes.c)
        )
    ).one()


# --- assessments -------------------------------------------------------------------


async def has_initial_assessment(session: AsyncSession, participant_id: uuid.UUID) -> bool:
    found = await session.execute(
        select(literal_column("1")).where(
            assessments.c.participant_id == participant_id, assessments.c.kind == "initial"
        )
    )
    return found.first() is not None


async def insert_assessment(
    session: AsyncSession,
    *,
    assessment_id: uuid.UUID,
    participant_id: uuid.UUID,
    kind: str,
    assessed_on: date,
    barriers: dict[str, int],
    wellbeing: int | None,
) -> Row[Any] | None:
    """Insert an assessment; ``None`` if it would be a second initial one."""
    statement = (
        pg_insert(assessments)
        .values(
            id=assessment_id,
            participant_id=participant_id,
            kind=kind,
            assessed_on=assessed_on,
            barriers=barriers,
            wellbeing=wellbeing,
        )
        .returning(*assessments.c)
    )
    if kind == "initial":
        statement = statement.on_conflict_do_nothing(
            index_elements=[assessments.c.participant_id],
            # A literal, not a bound parameter: once PostgreSQL switches the prepared
            # statement to a generic plan, ``kind = $1`` no longer matches the partial
            # unique index and the insert fails.
            index_where=text("kind = 'initial'"),
        )
    return (await session.execute(statement)).first()


async def assessments_of(session: AsyncSession, participant_id: uuid.UUID) -> list[Row[Any]]:
    rows = await session.execute(
        select(assessments)
        .where(assessments.c.participant_id == participant_id)
        .order_by(assessments.c.assessed_on, assessments.c.created_at, assessments.c.id)
    )
    return list(rows)
