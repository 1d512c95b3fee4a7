"""The referrals service's tables, all in the ``referrals`` schema, and its queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.domain import (
    HistoryEntry,
    Outcome,
    PersonKeys,
    ProgrammeRules,
    Status,
    StoredRequest,
)
from shared.db import DriverSQL, service_metadata
from shared.outbox import inbox_table, insert_document_sql, outbox_table

SCHEMA = "referrals"
metadata = service_metadata(SCHEMA)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

programmes = sa.Table(
    "programmes",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("eligible_benefits", ARRAY(sa.Text), nullable=False),
    sa.Column("min_age", sa.Integer, nullable=False),
    sa.Column("max_age", sa.Integer, nullable=False),
    # [{"partner_id": "...", "local_authorities": ["Wigan", ...]}, ...] as defined
    sa.Column("providers", JSONB, nullable=False),
    sa.Column(
        "defined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("referrer_id", UUID(as_uuid=True), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("external_ref", sa.Text, nullable=False),
    sa.Column("programme", sa.Text, nullable=False),
    sa.Column("referred_on", sa.Date, nullable=False),
    # True when the partner left referred_on out (it then defaulted to that UK day).
    sa.Column("referred_on_defaulted", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("provider_id", UUID(as_uuid=True)),
    sa.Column("reasons", ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("duplicate_of", UUID(as_uuid=True)),
    sa.Column("history", JSONB, nullable=False),
    sa.Column("person", JSONB, nullable=False),
    sa.Column("circumstances", JSONB, nullable=False),
    sa.Column("consent", JSONB, nullable=False),
    sa.Column("notes", sa.Text),
    # Matching keys for the duplicate rule, normalised once at intake.
    sa.Column("nino", sa.Text),
    sa.Column("family_key", sa.Text, nullable=False),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("postcode_key", sa.Text, nullable=False),
    # sha256 of the normalised request (all but referred_on), for idempotent retries.
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("participant_id", UUID(as_uuid=True)),
    sa.Column("attached_on", sa.Date),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # The time of the last status change: what updated_since filters on.
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("referrer_id", "external_ref"),
    sa.CheckConstraint(
        "status IN ('received', 'accepted', 'rejected', 'duplicate', 'attached', "
        "'declined', 'withdrawn')",
        name="status",
    ),
)
sa.Index(
    "ix_referrals_referrer_received",
    referrals.c.referrer_id,
    referrals.c.received_at,
    referrals.c.id,
)
sa.Index(
    "ix_referrals_provider_received",
    referrals.c.provider_id,
    referrals.c.received_at,
    referrals.c.id,
)
sa.Index("ix_referrals_received", referrals.c.received_at, referrals.c.id)
sa.Index("ix_referrals_updated_at", referrals.c.updated_at)
sa.Index("ix_referrals_match_nino", referrals.c.programme, referrals.c.nino)
sa.Index(
    "ix_referrals_match_name",
    referrals.c.programme,
    referrals.c.family_key,
    referrals.c.date_of_birth,
    referrals.c.postcode_key,
)
sa.Index(
    "ix_referrals_pending",
    referrals.c.received_at,
    postgresql_where=sa.text("status = 'received'"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("partner_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("referral_id", UUID(as_uuid=True), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferralRecord:
    """One stored referral, as read back."""

    id: uuid.UUID
    referrer_id: uuid.UUID
    source: str
    external_ref: str
    programme: str
    referred_on: date
    referred_on_defaulted: bool
    status: Status
    provider_id: uuid.UUID | None
    reasons: list[str]
    duplicate_of: uuid.UUID | None
    history: list[dict[str, Any]]
    person: dict[str, Any]
    circumstances: dict[str, Any]
    consent: dict[str, Any]
    notes: str | None
    nino: str | None
    family_key: str
    date_of_birth: date
    postcode_key: str
    fingerprint: str
    participant_id: uuid.UUID | None
    attached_on: date | None
    received_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ReferralRecord:
        values = dict(row._mapping)
        values["status"] = Status(values["status"])
        values["reasons"] = list(values["reasons"] or [])
        return cls(**values)

    @property
    def keys(self) -> PersonKeys:
        return PersonKeys(
            programme=self.programme,
            nino=self.nino,
            family_key=self.family_key,
            date_of_birth=self.date_of_birth,
            postcode_key=self.postcode_key,
        )

    @property
    def stored_request(self) -> StoredRequest:
        return StoredRequest(self.fingerprint, self.referred_on, self.referred_on_defaulted)


# --- programmes ----------------------------------------------------------------------------


def _rules(row: Any) -> ProgrammeRules:
    return ProgrammeRules.from_definition(
        code=row["code"],
        eligible_benefits=row["eligible_benefits"],
        min_age=row["min_age"],
        max_age=row["max_age"],
        providers=[
            (uuid.UUID(p["partner_id"]), p["local_authorities"]) for p in row["providers"] or []
        ],
    )


_PROGRAMME = DriverSQL("SELECT * FROM referrals.programmes WHERE code = :code")


async def load_programme(session: AsyncSession, code: str) -> ProgrammeRules | None:
    row = (await session.execute(_PROGRAMME.text, {"code": code})).mappings().first()
    return _rules(row) if row is not None else None


async def load_programme_on(driver: asyncpg.Connection, code: str) -> ProgrammeRules | None:
    row = await driver.fetchrow(_PROGRAMME.sql, code)
    return _rules(row) if row is not None else None


async def store_programme(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Keep a definition; definitions are immutable, so a redelivery changes nothing.
    True if this call stored it."""
    inserted = await session.execute(
        pg_insert(programmes)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[programmes.c.code])
        .returning(programmes.c.code)
    )
    return inserted.first() is not None


# Hot-path statements are built once: building one per request (bind parameters, cache
# keys) costs more CPU than running it. Parameters are passed at execution.
_LOCK = sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k")


async def lock(session: AsyncSession, lock_ids: Sequence[int]) -> None:
    """Transaction-scoped advisory locks, taken in the order given (callers sort)."""
    if lock_ids:
        await session.execute(_LOCK, {"ids": list(lock_ids)})


# --- the duplicate rule --------------------------------------------------------------------

# The same person: same NINO when both have one; otherwise the name rule. Accepted and
# attached referrals always stand; a `received` one only if it came in first.
_MATCH = """
    SELECT id FROM referrals.referrals
    WHERE programme = :programme AND id <> :exclude_id
      AND ({same_person})
      AND (status IN ('accepted', 'attached')
           OR (status = 'received'
               AND (received_at, id) < (CAST(:received_at AS timestamptz), :exclude_id)))
    ORDER BY received_at, id
    LIMIT 1
"""
_SAME_NAME = (
    "family_key = :family_key AND date_of_birth = :date_of_birth AND postcode_key = :postcode_key"
)
_MATCH_BY_NINO_OR_NAME = DriverSQL(
    _MATCH.format(same_person=f"nino = :nino OR (nino IS NULL AND {_SAME_NAME})")
)
_MATCH_BY_NAME = DriverSQL(_MATCH.format(same_person=_SAME_NAME))


def _match(
    keys: PersonKeys, exclude_id: uuid.UUID, received_at: datetime
) -> tuple[DriverSQL, dict[str, Any]]:
    params: dict[str, Any] = {
        "programme": keys.programme,
        "family_key": keys.family_key,
        "date_of_birth": keys.date_of_birth,
        "postcode_key": keys.postcode_key,
        "exclude_id": exclude_id,
        "received_at": received_at,
    }
    if keys.nino:
        params["nino"] = keys.nino
        return _MATCH_BY_NINO_OR_NAME, params
    return _MATCH_BY_NAME, params


async def find_live_match(
    session: AsyncSession,
    keys: PersonKeys,
    *,
    exclude_id: uuid.UUID,
    received_at: datetime,
) -> uuid.UUID | None:
    """The earliest referral of the same person in the programme that still stands.

    Accepted and attached referrals always count. A ``received`` one (waiting for its
    programme's definition) counts only if it came in first: when the definition
    arrives, waiting referrals are decided oldest first and the oldest one wins.
    Callers hold the person's advisory locks, so no match can commit meanwhile.
    """
    query, params = _match(keys, exclude_id, received_at)
    return (await session.execute(query.text, params)).scalar()


async def find_live_match_on(
    driver: asyncpg.Connection,
    keys: PersonKeys,
    *,
    exclude_id: uuid.UUID,
    received_at: datetime,
) -> uuid.UUID | None:
    """:func:`find_live_match` on a driver connection (intake's hot path)."""
    query, params = _match(keys, exclude_id, received_at)
    return await driver.fetchval(query.sql, *query.args(params))


def lock_statements(lock_ids: Sequence[int]) -> list[str]:
    """Statements taking transaction advisory locks on integer keys, one each so they
    are taken in the order given (callers sort); they have no parameters, so they can
    go with the ``BEGIN`` (:func:`shared.db.driver_transaction`)."""
    return [f"SELECT pg_advisory_xact_lock({int(k)})" for k in lock_ids]


# --- writing referrals ---------------------------------------------------------------------

_NEW_COLUMNS = [c.name for c in referrals.c if c.name not in ("participant_id", "attached_on")]
_JSON_COLUMNS = frozenset(c.name for c in referrals.c if isinstance(c.type, JSONB))
# One statement, one round trip: the referral, its events (only if the referral was
# stored) and the Idempotency-Key (only if given and the referral was stored).
_INSERT_NEW = f"""
    WITH referral AS (
        INSERT INTO referrals.referrals ({", ".join(_NEW_COLUMNS)})
        VALUES ({", ".join(f"${n}" for n in range(1, len(_NEW_COLUMNS) + 1))})
        ON CONFLICT (referrer_id, external_ref) DO NOTHING
        RETURNING id
    ),
    events AS ({insert_document_sql(outbox, f"${len(_NEW_COLUMNS) + 1}", only_if="referral")}),
    idempotency AS (
        INSERT INTO referrals.idempotency_keys (partner_id, key, referral_id)
        SELECT $2, CAST(${len(_NEW_COLUMNS) + 2} AS text), id FROM referral
        WHERE CAST(${len(_NEW_COLUMNS) + 2} AS text) IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING key
    )
    SELECT EXISTS (SELECT 1 FROM referral) AS stored,
           EXISTS (SELECT 1 FROM idempotency) AS key_kept
"""
assert _NEW_COLUMNS[1] == "referrer_id"  # $2 above


@dataclass(frozen=True)
class Inserted:
    stored: bool  # False: this partner already used the external_ref
    key_kept: bool  # False: no key given, or a concurrent request took it


async def insert_new_referral(
    driver: asyncpg.Connection,
    values: dict[str, Any],
    *,
    events: str,
    idempotency_key: str | None,
) -> Inserted:
    """Insert a new referral with its events (an outbox document) and key."""
    args = [
        orjson.dumps(values[c]).decode() if c in _JSON_COLUMNS else values[c] for c in _NEW_COLUMNS
    ]
    row = await driver.fetchrow(_INSERT_NEW, *args, events, idempotency_key)
    return Inserted(stored=row["stored"], key_kept=row["key_kept"])


def new_record(values: dict[str, Any]) -> ReferralRecord:
    """The record of a referral just inserted with ``values``, as reading it back
    would give."""
    fields = {c: values[c] for c in _NEW_COLUMNS}
    fields["status"] = Status(fields["status"])
    return ReferralRecord(**fields, participant_id=None, attached_on=None)


async def change_status(
    session: AsyncSession,
    referral_id: uuid.UUID,
    *,
    outcome: Outcome,
    entry: HistoryEntry,
    updated_at: datetime,
    expected: Iterable[Status],
    extra: dict[str, Any] | None = None,
) -> ReferralRecord | None:
    """Move a referral on, appending to its history; ``None`` if it was not in one of
    the ``expected`` statuses (someone else moved it first)."""
    r = referrals.c
    values: dict[str, Any] = {
        "status": outcome.status.value,
        "history": r.history.op("||")(sa.cast(sa.literal([entry.as_json()], JSONB), JSONB)),
        "updated_at": updated_at,
        **(extra or {}),
    }
    if outcome.status in (Status.ACCEPTED, Status.REJECTED, Status.DUPLICATE):
        values |= {
            "reasons": list(outcome.reasons),
            "provider_id": outcome.provider_id,
            "duplicate_of": outcome.duplicate_of,
        }
    row = (
        await session.execute(
            sa.update(referrals)
            .where(r.id == referral_id, r.status.in_([s.value for s in expected]))
            .values(**values)
            .returning(*referrals.c)
        )
    ).first()
    return ReferralRecord.from_row(row) if row is not None else None


# --- reading referrals ---------------------------------------------------------------------


_BY_ID = sa.select(referrals).where(referrals.c.id == sa.bindparam("id", type_=UUID(as_uuid=True)))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


async def get_referral(
    session: AsyncSession, referral_id: uuid.UUID, *, for_update: bool = False
) -> ReferralRecord | None:
    query = _BY_ID_FOR_UPDATE if for_update else _BY_ID
    row = (await session.execute(query, {"id": referral_id})).first()
    return ReferralRecord.from_row(row) if row is not None else None


async def get_by_external_ref(
    session: AsyncSession, referrer_id: uuid.UUID, external_ref: str
) -> ReferralRecord | None:
    row = (
        await session.execute(
            sa.select(referrals).where(
                referrals.c.referrer_id == referrer_id, referrals.c.external_ref == external_ref
            )
        )
    ).first()
    return ReferralRecord.from_row(row) if row is not None else None


async def get_by_idempotency_key(
    session: AsyncSession, partner_id: uuid.UUID, key: str
) -> ReferralRecord | None:
    k = idempotency_keys.c
    row = (
        await session.execute(
            sa.select(referrals)
            .join(idempotency_keys, k.referral_id == referrals.c.id)
            .where(k.partner_id == partner_id, k.key == key)
        )
    ).first()
    return ReferralRecord.from_row(row) if row is not None else None


@dataclass(frozen=True)
class Visibility:
    """Which referrals a caller may see (contract §1)."""

    everything: bool = False
    made_by: uuid.UUID | None = None
    routed_to: uuid.UUID | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        """Alternatives, each served by its own index; empty when everything is visible."""
        r = referrals.c
        clauses: list[sa.ColumnElement[bool]] = []
        if self.made_by is not None:
            clauses.append(r.referrer_id == self.made_by)
        if self.routed_to is not None:
            clauses.append(r.provider_id == self.routed_to)
        if not clauses and not self.everything:
            clauses.append(sa.false())
        return clauses


async def list_referrals(
    session: AsyncSession,
    *,
    visibility: Visibility,
    status: Status | None,
    programme: str | None,
    updated_since: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ReferralRecord]:
    """One page, most recently received first, keyset on (received_at, id)."""
    r = referrals.c
    filters: list[sa.ColumnElement[bool]] = []
    if status is not None:
        filters.append(r.status == status.value)
    if programme is not None:
        filters.append(r.programme == programme)
    if updated_since is not None:
        filters.append(r.updated_at >= updated_since)
    if after is not None:
        filters.append(sa.tuple_(r.received_at, r.id) < sa.tuple_(*after))
    newest_first = (r.received_at.desc(), r.id.desc())
    alternatives = visibility.clauses()
    if len(alternatives) <= 1:
        query = sa.select(referrals).where(*alternatives, *filters)
    else:
        # A provider sees what is routed to it OR what it made. One page of each, walked
        # along its own (…, received_at, id) index, then merged: no sort of everything
        # the provider has ever been sent to find the newest few.
        pages = [
            sa.select(r.id).where(alternative, *filters).order_by(*newest_first).limit(limit)
            for alternative in alternatives
        ]
        ids = sa.union(*pages).subquery()
        query = sa.select(referrals).join(ids, ids.c.id == r.id)
    query = query.order_by(*newest_first).limit(limit)
    return [ReferralRecord.from_row(row) for row in (await session.execute(query)).all()]


async def pending_for_programme(session: AsyncSession, code: str) -> list[ReferralRecord]:
    """Referrals waiting for this programme's definition, oldest first, locked."""
    rows = (
        await session.execute(
            sa.select(referrals)
            .where(referrals.c.programme == code, sa.text("status = 'received'"))
            .order_by(referrals.c.received_at, referrals.c.id)
            .with_for_update()
        )
    ).all()
    return [ReferralRecord.from_row(row) for row in rows]


async def programmes_to_settle(session: AsyncSession, *, received_before: datetime) -> list[str]:
    """Programmes with referrals the sweep can settle now: waiting ones whose programme
    is known, or that have waited past the deadline."""
    r = referrals.c
    known = sa.select(programmes.c.code).where(programmes.c.code == r.programme).exists()
    rows = await session.execute(
        sa.select(r.programme)
        .where(sa.text("status = 'received'"), sa.or_(r.received_at < received_before, known))
        .distinct()
    )
    return sorted(rows.scalars())


async def waiting_in_programme(
    session: AsyncSession, code: str, *, received_before: datetime | None, limit: int
) -> list[ReferralRecord]:
    """Waiting referrals of one programme, oldest first, locked; rows another
    transaction is deciding are skipped."""
    r = referrals.c
    query = sa.select(referrals).where(r.programme == code, sa.text("status = 'received'"))
    if received_before is not None:
        query = query.where(r.received_at < received_before)
    query = query.order_by(r.received_at, r.id).limit(limit).with_for_update(skip_locked=True)
    return [ReferralRecord.from_row(row) for row in (await session.execute(query)).all()]
