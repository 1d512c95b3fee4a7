"""The outcomes service's tables, all in the ``outcomes`` schema, and its queries.

* ``programmes``, ``participants``, ``employment_episodes``: facts learnt from events.
* ``claims``: outcome claims with their decision record. The once-per-type rule is a
  partial unique index: at most one claim per (participant, provider, type) holds the
  slot, and only a claim that is submitted, in review or validated may hold it.
* ``ledger_lines``: append-only accruals; a trigger refuses UPDATE, DELETE and TRUNCATE.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Row,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.outcomes import domain
from shared.db import service_metadata
from shared.outbox import inbox_table, outbox_table

SCHEMA = "outcomes"
metadata = service_metadata(SCHEMA)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

_TYPES = ", ".join(f"'{t.value}'" for t in domain.OutcomeType)
_STATUSES = ", ".join(f"'{s.value}'" for s in domain.ClaimStatus)
_SLOT_STATUSES = ", ".join(f"'{s.value}'" for s in domain.SLOT_STATUSES)

programmes = Table(
    "programmes",
    metadata,
    Column("code", Text, primary_key=True),
    Column("support_weeks", Integer, nullable=False),
    Column("min_job_hours", Float, nullable=False),
    Column("sustainment_weeks", Integer, nullable=False),
    Column("tariff", JSONB, nullable=False),
    Column("defined_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

participants = Table(
    "participants",
    metadata,
    Column("participant_id", UUID(as_uuid=True), primary_key=True),
    Column("referral_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("attached_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_participants_programme", "programme"),
)

employment_episodes = Table(
    "employment_episodes",
    metadata,
    Column("episode_id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("started_on", Date, nullable=False),
    Column("ended_on", Date),
    Column("hours_per_week", Float, nullable=False),
    Column("self_employed", Boolean, nullable=False),
    # When casework produced the state held here: an older event never overwrites it.
    Column("state_at", DateTime(timezone=True), nullable=False),
    Index("ix_employment_episodes_participant_id", "participant_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text),
    Column("type", Text, nullable=False),
    Column("achieved_on", Date, nullable=False),
    Column("employment_id", UUID(as_uuid=True)),
    Column("evidence", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("holds_slot", Boolean, nullable=False),
    Column("duplicate_of", UUID(as_uuid=True)),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("facts_deadline", DateTime(timezone=True), nullable=False),
    # When casework's answer on the participant's employment arrived (null: not yet).
    Column("employment_confirmed_at", DateTime(timezone=True)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision", JSONB),
    CheckConstraint(f"type IN ({_TYPES})", name="type"),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    CheckConstraint(f"NOT holds_slot OR status IN ({_SLOT_STATUSES})", name="slot_status"),
    Index(
        "uq_claims_slot",
        "participant_id",
        "provider_id",
        "type",
        unique=True,
        postgresql_where=text("holds_slot"),
    ),
    Index("ix_claims_provider_id_seq", "provider_id", "seq"),
    Index("ix_claims_participant_id", "participant_id"),
    Index("ix_claims_waiting", "facts_deadline", postgresql_where=text("status = 'submitted'")),
    Index(
        "ix_claims_validated_programme_achieved_on",
        "programme",
        "achieved_on",
        postgresql_where=text("status = 'validated'"),
    ),
)

ledger_lines = Table(
    "ledger_lines",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("claim_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    Column("amount_pence", BigInteger, nullable=False),
    Column("accrued_on", Date, nullable=False),
    Column("reverses_line_id", UUID(as_uuid=True), ForeignKey("ledger_lines.id"), unique=True),
    Column("note", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("(kind = 'attachment') = (claim_id IS NULL)", name="claim_line_has_claim"),
    Index(
        "uq_ledger_lines_attachment",
        "participant_id",
        unique=True,
        postgresql_where=text("kind = 'attachment' AND reverses_line_id IS NULL"),
    ),
    Index(
        "uq_ledger_lines_claim",
        "claim_id",
        unique=True,
        postgresql_where=text("claim_id IS NOT NULL AND reverses_line_id IS NULL"),
    ),
    Index("ix_ledger_lines_statement", "provider_id", "programme", "accrued_on"),
)


# --- participant lock ---------------------------------------------------------------------

# Every change to a participant's claims, and every fact that may decide a waiting claim,
# happens under this transaction-scoped lock, so a claim committed as "waiting" and the
# event it waits for can never miss each other.
_LOCK_CLASS = zlib.crc32(b"outcomes.participant") & 0x7FFFFFFF


async def lock_participant(session: AsyncSession, participant_id: uuid.UUID) -> None:
    key = zlib.crc32(participant_id.bytes) & 0x7FFFFFFF
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:cls, :key)"), {"cls": _LOCK_CLASS, "key": key}
    )


# --- facts from events ------------------------------------------------------------------


async def save_programme(session: AsyncSession, values: dict[str, Any]) -> None:
    # A definition never changes once made (gateway); a redelivery changes nothing.
    await session.execute(pg_insert(programmes).values(**values).on_conflict_do_nothing())


async def programme_terms(session: AsyncSession, code: str) -> domain.ProgrammeTerms | None:
    row = (await session.execute(select(programmes).where(programmes.c.code == code))).first()
    return _terms(row) if row is not None else None


def _terms(row: Row) -> domain.ProgrammeTerms:
    return domain.ProgrammeTerms(
        code=row.code,
        support_weeks=row.support_weeks,
        min_job_hours=row.min_job_hours,
        sustainment_weeks=row.sustainment_weeks,
        tariff={k: int(v) for k, v in row.tariff.items()},
    )


async def programme_exists(session: AsyncSession, code: str) -> bool:
    found = await session.execute(select(programmes.c.code).where(programmes.c.code == code))
    return found.first() is not None


async def save_participant(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(pg_insert(participants).values(**values).on_conflict_do_nothing())


async def attachment_with_terms(
    session: AsyncSession, participant_id: uuid.UUID
) -> tuple[domain.Attachment | None, domain.ProgrammeTerms | None]:
    """The participant's attachment and its programme's terms, as far as known (one query)."""
    row = (
        await session.execute(
            select(participants, programmes)
            .select_from(
                participants.outerjoin(programmes, programmes.c.code == participants.c.programme)
            )
            .where(participants.c.participant_id == participant_id)
        )
    ).first()
    if row is None:
        return None, None
    found = domain.Attachment(row.participant_id, row.provider_id, row.programme, row.attached_on)
    return found, (_terms(row) if row.code is not None else None)


async def save_episode(session: AsyncSession, values: dict[str, Any]) -> None:
    """Upsert an episode's whole state unless what is stored is newer (order-tolerant).

    On equal timestamps an ended state wins over an ongoing one.
    """
    stmt = pg_insert(employment_episodes).values(**values)
    current = employment_episodes.c
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[current.episode_id],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "participant_id",
                    "programme",
                    "provider_id",
                    "started_on",
                    "ended_on",
                    "hours_per_week",
                    "self_employed",
                    "state_at",
                )
            },
            where=or_(
                current.state_at < stmt.excluded.state_at,
                and_(
                    current.state_at == stmt.excluded.state_at,
                    current.ended_on.is_(None),
                    stmt.excluded.ended_on.is_not(None),
                ),
            ),
        )
    )


async def episodes_of(session: AsyncSession, participant_id: uuid.UUID) -> list[domain.Episode]:
    rows = await session.execute(
        select(employment_episodes)
        .where(employment_episodes.c.participant_id == participant_id)
        .order_by(employment_episodes.c.started_on, employment_episodes.c.episode_id)
    )
    return [_episode(row) for row in rows]


async def episode_owner(session: AsyncSession, episode_id: uuid.UUID) -> uuid.UUID | None:
    """The participant an episode belongs to, if the episode has been heard of."""
    row = await session.execute(
        select(employment_episodes.c.participant_id).where(
            employment_episodes.c.episode_id == episode_id
        )
    )
    return row.scalar_one_or_none()


def _episode(row: Row) -> domain.Episode:
    return domain.Episode(
        episode_id=row.episode_id,
        started_on=row.started_on,
        ended_on=row.ended_on,
        hours_per_week=row.hours_per_week,
        self_employed=row.self_employed,
    )


# --- claims -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewClaim:
    id: uuid.UUID
    participant_id: uuid.UUID
    provider_id: uuid.UUID
    type: str
    achieved_on: date
    employment_id: uuid.UUID | None
    evidence: list[dict[str, Any]]
    submitted_at: datetime
    facts_deadline: datetime


async def insert_claim(session: AsyncSession, claim: NewClaim) -> Row:
    """Store a submitted claim and return it as stored. If another claim already holds
    the participant's slot for this type, this one is stored as its duplicate
    (``holds_slot`` false, ``duplicate_of`` that claim).

    The partial unique index decides, so two claims inserted at the same moment cannot
    both take the slot: the second waits for the first to commit and then conflicts.
    """
    values = {
        "id": claim.id,
        "participant_id": claim.participant_id,
        "provider_id": claim.provider_id,
        "type": claim.type,
        "achieved_on": claim.achieved_on,
        "employment_id": claim.employment_id,
        "evidence": claim.evidence,
        "status": domain.ClaimStatus.SUBMITTED.value,
        "submitted_at": claim.submitted_at,
        "facts_deadline": claim.facts_deadline,
    }
    # The caller holds the participant lock, so the holder found after a conflict is
    # still holding; the loop only matters if someone changes claims without the lock.
    for _ in range(3):
        inserted = await session.execute(
            pg_insert(claims)
            .values(**values, holds_slot=True)
            .on_conflict_do_nothing(
                index_elements=[claims.c.participant_id, claims.c.provider_id, claims.c.type],
                index_where=text("holds_slot"),
            )
            .returning(*claims.c)
        )
        row = inserted.first()
        if row is not None:
            return row
        holder = (
            await session.execute(
                select(claims.c.id).where(
                    claims.c.participant_id == claim.participant_id,
                    claims.c.provider_id == claim.provider_id,
                    claims.c.type == claim.type,
                    claims.c.holds_slot,
                )
            )
        ).scalar_one_or_none()
        if holder is not None:
            duplicate = await session.execute(
                pg_insert(claims)
                .values(**values, holds_slot=False, duplicate_of=holder)
                .returning(*claims.c)
            )
            return duplicate.one()
    raise RuntimeError("could not settle the claim's once-per-type slot")


async def get_claim(
    session: AsyncSession, claim_id: uuid.UUID, *, for_update: bool = False
) -> Row | None:
    query = select(claims).where(claims.c.id == claim_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def confirm_employment(
    session: AsyncSession, claim_id: uuid.UUID, participant_id: uuid.UUID, at: datetime
) -> None:
    """Casework has answered the claim's request: its employment facts are current."""
    await session.execute(
        update(claims)
        .where(
            claims.c.id == claim_id,
            claims.c.participant_id == participant_id,
            claims.c.employment_confirmed_at.is_(None),
        )
        .values(employment_confirmed_at=at)
    )


async def waiting_claims(session: AsyncSession, participant_id: uuid.UUID) -> list[Row]:
    """The participant's submitted claims, oldest first, locked for deciding."""
    rows = await session.execute(
        select(claims)
        .where(
            claims.c.participant_id == participant_id,
            claims.c.status == domain.ClaimStatus.SUBMITTED.value,
        )
        .order_by(claims.c.seq)
        .with_for_update()
    )
    return list(rows)


async def participants_with_expired_waits(
    session: AsyncSession, now: datetime, limit: int
) -> list[uuid.UUID]:
    """Participants with a claim whose bounded wait for facts is over, oldest first.

    Claims of the participant's own provider whose programme is still unknown are left
    out: they cannot be decided (no terms, no tariff) until the definition arrives.
    """
    waiting = claims.c
    query = (
        select(waiting.participant_id)
        .select_from(
            claims.outerjoin(
                participants, participants.c.participant_id == waiting.participant_id
            ).outerjoin(programmes, programmes.c.code == participants.c.programme)
        )
        .where(
            waiting.status == domain.ClaimStatus.SUBMITTED.value,
            waiting.facts_deadline <= now,
            or_(
                participants.c.participant_id.is_(None),
                participants.c.provider_id != waiting.provider_id,
                programmes.c.code.is_not(None),
            ),
        )
        .group_by(waiting.participant_id)
        .order_by(func.min(waiting.facts_deadline))
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def participants_waiting_in_programme(session: AsyncSession, code: str) -> list[uuid.UUID]:
    rows = await session.execute(
        select(claims.c.participant_id)
        .join(participants, participants.c.participant_id == claims.c.participant_id)
        .where(
            participants.c.programme == code,
            claims.c.status == domain.ClaimStatus.SUBMITTED.value,
        )
        .group_by(claims.c.participant_id)
        .order_by(claims.c.participant_id)
    )
    return list(rows.scalars())


async def validated_job_start(
    session: AsyncSession, participant_id: uuid.UUID
) -> domain.JobStart | None:
    row = (
        await session.execute(
            select(claims.c.id, claims.c.achieved_on)
            .where(
                claims.c.participant_id == participant_id,
                claims.c.type == domain.OutcomeType.JOB_START.value,
                claims.c.status == domain.ClaimStatus.VALIDATED.value,
            )
            .order_by(claims.c.achieved_on, claims.c.seq)
            .limit(1)
        )
    ).first()
    return domain.JobStart(row.id, row.achieved_on) if row is not None else None


async def job_start_pending(session: AsyncSession, participant_id: uuid.UUID) -> bool:
    row = await session.execute(
        select(claims.c.id)
        .where(
            claims.c.participant_id == participant_id,
            claims.c.type == domain.OutcomeType.JOB_START.value,
            claims.c.status.in_([s.value for s in domain.PENDING_STATUSES]),
        )
        .limit(1)
    )
    return row.first() is not None


async def record_decision(
    session: AsyncSession,
    claim_id: uuid.UUID,
    *,
    status: domain.ClaimStatus,
    reasons: Sequence[str],
    programme: str | None,
    decided_at: datetime,
    decision: dict[str, Any],
) -> None:
    values: dict[str, Any] = {
        "status": status.value,
        "reasons": list(reasons),
        "programme": programme,
        "decided_at": decided_at,
        "decision": decision,
    }
    if status is domain.ClaimStatus.REJECTED:
        values["holds_slot"] = False  # a rejected claim frees the participant's slot
    await session.execute(update(claims).where(claims.c.id == claim_id).values(**values))


async def list_claims(
    session: AsyncSession,
    *,
    provider_id: uuid.UUID | None,
    status: str | None,
    participant_id: uuid.UUID | None,
    programme: str | None,
    type_: str | None,
    before_seq: int | None,
    limit: int,
) -> list[Row]:
    """Most recent first; keyset on ``seq``."""
    query = select(claims).order_by(claims.c.seq.desc()).limit(limit)
    if provider_id is not None:
        query = query.where(claims.c.provider_id == provider_id)
    if status is not None:
        query = query.where(claims.c.status == status)
    if participant_id is not None:
        query = query.where(claims.c.participant_id == participant_id)
    if programme is not None:
        query = query.where(claims.c.programme == programme)
    if type_ is not None:
        query = query.where(claims.c.type == type_)
    if before_seq is not None:
        query = query.where(claims.c.seq < before_seq)
    return list(await session.execute(query))


async def validated_claim_ids_achieved_between(
    session: AsyncSession, programme: str, start: date, end: date
) -> list[uuid.UUID]:
    rows = await session.execute(
        select(claims.c.id).where(
            claims.c.programme == programme,
            claims.c.status == domain.ClaimStatus.VALIDATED.value,
            claims.c.achieved_on >= start,
            claims.c.achieved_on < end,
        )
    )
    return list(rows.scalars())


async def claims_by_id(
    session: AsyncSession, claim_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Row]:
    if not claim_ids:
        return {}
    rows = await session.execute(select(claims).where(claims.c.id.in_(list(claim_ids))))
    return {row.id: row for row in rows}


# --- ledger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerLine:
    id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    participant_id: uuid.UUID
    claim_id: uuid.UUID | None
    kind: str
    amount_pence: int
    accrued_on: date


async def append_line(session: AsyncSession, line: LedgerLine) -> bool:
    """Append one accrual; ``False`` if that attachment or claim has accrued already."""
    kind_is_attachment = line.kind == domain.ATTACHMENT_KIND
    inserted = await session.execute(
        pg_insert(ledger_lines)
        .values(
            id=line.id,
            programme=line.programme,
            provider_id=line.provider_id,
            participant_id=line.participant_id,
            claim_id=line.claim_id,
            kind=line.kind,
            amount_pence=line.amount_pence,
            accrued_on=line.accrued_on,
        )
        .on_conflict_do_nothing(
            index_elements=[ledger_lines.c.participant_id if kind_is_attachment else "claim_id"],
            index_where=text(
                "kind = 'attachment' AND reverses_line_id IS NULL"
                if kind_is_attachment
                else "claim_id IS NOT NULL AND reverses_line_id IS NULL"
            ),
        )
        .returning(ledger_lines.c.id)
    )
    return inserted.first() is not None


async def participants_without_attachment_line(
    session: AsyncSession, code: str
) -> list[domain.Attachment]:
    lines = ledger_lines.alias("l")
    rows = await session.execute(
        select(participants)
        .where(
            participants.c.programme == code,
            ~select(lines.c.id)
            .where(
                lines.c.participant_id == participants.c.participant_id,
                lines.c.kind == domain.ATTACHMENT_KIND,
            )
            .exists(),
        )
        .order_by(participants.c.participant_id)
    )
    return [
        domain.Attachment(r.participant_id, r.provider_id, r.programme, r.attached_on) for r in rows
    ]


async def statement_lines(
    session: AsyncSession, *, provider_id: uuid.UUID, programme: str, start: date, end: date
) -> list[Row]:
    rows = await session.execute(
        select(ledger_lines)
        .where(
            ledger_lines.c.provider_id == provider_id,
            ledger_lines.c.programme == programme,
            ledger_lines.c.accrued_on >= start,
            ledger_lines.c.accrued_on < end,
        )
        .order_by(ledger_lines.c.accrued_on, ledger_lines.c.kind, ledger_lines.c.seq)
    )
    return list(rows)
