"""The gateway service's tables, all in the ``gateway`` schema, and its queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Table,
    Text,
    and_,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.caller import PartnerKind
from shared.db import service_metadata
from shared.outbox import inbox_table, outbox_table

SCHEMA = "gateway"
metadata = service_metadata(SCHEMA)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# NOTIFY channel on which every replica hears that a key changed (payload: its prefix).
KEYS_CHANNEL = "gateway_keys"

partners = Table(
    "partners",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "kind IN ('jcp', 'probation', 'treatment', 'provider', 'programme_office')", name="kind"
    ),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("partner_id", UUID(as_uuid=True), ForeignKey(partners.c.id), nullable=False),
    Column("prefix", Text, nullable=False, unique=True),
    # SHA-256 of the whole key; the key itself is never stored.
    Column("digest", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_api_keys_partner_id", api_keys.c.partner_id)

programmes = Table(
    "programmes",
    metadata,
    Column("code", Text, primary_key=True),
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),  # partner | admin | anonymous
    Column("partner_id", UUID(as_uuid=True)),
    Column("key_id", UUID(as_uuid=True)),
    Column("method", Text, nullable=False),
    Column("route", Text, nullable=False),  # the path template, never the raw path
    Column("resource_id", Text),
    Column("status", SmallInteger, nullable=False),
    Column("request_id", Text),
    Column("duration_ms", Integer, nullable=False),
)
Index("ix_audit_log_partner_id_id", audit_log.c.partner_id, audit_log.c.id)
Index("ix_audit_log_at", audit_log.c.at)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("partner_id", UUID(as_uuid=True), ForeignKey(partners.c.id), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    # Needed in clear to sign each delivery; only ever shown to the partner once.
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("deleted_at", DateTime(timezone=True)),
)
Index("ix_webhook_subscriptions_partner_id", webhook_subscriptions.c.partner_id)

PENDING = "pending"  # not attempted yet
RETRYING = "retrying"  # attempted, failed, will be tried again
DELIVERED = "delivered"
FAILED = "failed"  # gave up after the retry period
CANCELLED = "cancelled"  # its subscription was deleted
OPEN_STATUSES = (PENDING, RETRYING)
DELIVERY_STATUSES = (PENDING, RETRYING, DELIVERED, FAILED, CANCELLED)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "subscription_id",
        UUID(as_uuid=True),
        ForeignKey(webhook_subscriptions.c.id),
        nullable=False,
    ),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("referral_id", UUID(as_uuid=True), nullable=False),
    # When the change happened: deliveries for one referral go out in this order.
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    # Then in the referral's own order, for changes made at the same instant.
    Column("sequence", Integer, nullable=False, server_default="0"),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("leased_until", DateTime(timezone=True)),
    # The retry period runs from here, not from created_at: a delivery may wait long in
    # its referral's queue before it is first tried.
    Column("first_attempted_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint(
        "status IN ('pending', 'retrying', 'delivered', 'failed', 'cancelled')", name="status"
    ),
)
Index(
    "uq_webhook_deliveries_subscription_id_event_id",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.event_id,
    unique=True,
)
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    postgresql_where=webhook_deliveries.c.status.in_(OPEN_STATUSES),
)
Index(
    "ix_webhook_deliveries_open_order",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.referral_id,
    webhook_deliveries.c.occurred_at,
    webhook_deliveries.c.sequence,
    webhook_deliveries.c.id,
    postgresql_where=webhook_deliveries.c.status.in_(OPEN_STATUSES),
)
Index(
    "ix_webhook_deliveries_subscription_status",
    webhook_deliveries.c.subscription_id,
    webhook_deliveries.c.status,
    webhook_deliveries.c.id,
)


# --------------------------------------------------------------------------------------
# Partners and keys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRecord:
    """What authentication needs to know about one key."""

    key_id: uuid.UUID
    partner_id: uuid.UUID
    kind: PartnerKind
    digest: bytes
    expires_at: datetime | None
    revoked: bool


async def key_by_prefix(conn: AsyncConnection | AsyncSession, prefix: str) -> KeyRecord | None:
    row = (
        await conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.partner_id,
                partners.c.kind,
                api_keys.c.digest,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
            )
            .join(partners, partners.c.id == api_keys.c.partner_id)
            .where(api_keys.c.prefix == prefix)
        )
    ).first()
    if row is None:
        return None
    return KeyRecord(
        row.id,
        row.partner_id,
        PartnerKind(row.kind),
        bytes(row.digest),
        row.expires_at,
        row.revoked_at is not None,
    )


async def notify_key_changed(session: AsyncSession, prefix: str) -> None:
    """Tell every replica (at commit) to forget what it cached about this key."""
    await session.execute(
        text("SELECT pg_notify(:channel, :prefix)"), {"channel": KEYS_CHANNEL, "prefix": prefix}
    )


async def insert_partner(session: AsyncSession, partner_id: uuid.UUID, name: str, kind: str):
    return (
        await session.execute(
            partners.insert().values(id=partner_id, name=name, kind=kind).returning(*partners.c)
        )
    ).one()


async def insert_key(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID,
    prefix: str,
    digest: bytes,
) -> Any:
    row = (
        await session.execute(
            api_keys.insert()
            .values(id=uuid.uuid4(), partner_id=partner_id, prefix=prefix, digest=digest)
            .returning(*_public_key_columns())
        )
    ).one()
    await notify_key_changed(session, prefix)
    return row


def _public_key_columns():
    return (
        api_keys.c.id,
        api_keys.c.partner_id,
        api_keys.c.prefix,
        api_keys.c.created_at,
        api_keys.c.expires_at,
        api_keys.c.revoked_at,
    )


async def get_partner(session: AsyncSession, partner_id: uuid.UUID):
    return (await session.execute(select(partners).where(partners.c.id == partner_id))).first()


async def list_partners(session: AsyncSession, *, after: uuid.UUID | None, limit: int):
    query = select(partners).order_by(partners.c.id).limit(limit)
    if after is not None:
        query = query.where(partners.c.id > after)
    return (await session.execute(query)).all()


async def partner_kinds(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, PartnerKind]:
    if not ids:
        return {}
    rows = await session.execute(
        select(partners.c.id, partners.c.kind).where(partners.c.id.in_(ids))
    )
    return {row.id: PartnerKind(row.kind) for row in rows}


async def list_keys(session: AsyncSession, partner_id: uuid.UUID):
    return (
        await session.execute(
            select(*_public_key_columns())
            .where(api_keys.c.partner_id == partner_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
    ).all()


async def get_key_for_update(session: AsyncSession, partner_id: uuid.UUID, key_id: uuid.UUID):
    return (
        await session.execute(
            select(*_public_key_columns())
            .where(api_keys.c.id == key_id, api_keys.c.partner_id == partner_id)
            .with_for_update()
        )
    ).first()


async def revoke_key(session: AsyncSession, key_id: uuid.UUID, prefix: str):
    row = (
        await session.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
            .returning(*_public_key_columns())
        )
    ).one()
    await notify_key_changed(session, prefix)
    return row


async def expire_key(session: AsyncSession, key_id: uuid.UUID, prefix: str, seconds: int):
    """Let a key work ``seconds`` more (never longer than it already would)."""
    deadline = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    row = (
        await session.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(expires_at=func.least(func.coalesce(api_keys.c.expires_at, deadline), deadline))
            .returning(*_public_key_columns())
        )
    ).one()
    await notify_key_changed(session, prefix)
    return row


# --------------------------------------------------------------------------------------
# Programmes
# --------------------------------------------------------------------------------------


async def insert_programme(session: AsyncSession, code: str, definition: dict[str, Any]):
    """Insert a definition; ``None`` if the code is taken."""
    return (
        await session.execute(
            pg_insert(programmes)
            .values(code=code, definition=definition)
            .on_conflict_do_nothing(index_elements=[programmes.c.code])
            .returning(programmes.c.definition, programmes.c.created_at)
        )
    ).first()


async def get_programme(session: AsyncSession, code: str):
    return (await session.execute(select(programmes).where(programmes.c.code == code))).first()


async def list_programmes(session: AsyncSession):
    return (await session.execute(select(programmes).order_by(programmes.c.created_at))).all()


# --------------------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------------------


AUDIT_COLUMNS = (
    "at",
    "actor",
    "partner_id",
    "key_id",
    "method",
    "route",
    "resource_id",
    "status",
    "request_id",
    "duration_ms",
)


async def copy_audit_rows(conn: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
    """Write audit rows (tuples in ``AUDIT_COLUMNS`` order) with COPY: one round trip
    and about half the cost of a multi-row INSERT. Runs outside any transaction, so
    the batch is committed when this returns."""
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "audit_log", schema_name=SCHEMA, columns=AUDIT_COLUMNS, records=rows
    )


async def query_audit(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
):
    query = select(audit_log).order_by(audit_log.c.id).limit(limit)
    conditions = []
    if partner_id is not None:
        conditions.append(audit_log.c.partner_id == partner_id)
    if since is not None:
        conditions.append(audit_log.c.at >= since)
    if until is not None:
        conditions.append(audit_log.c.at < until)
    if after_id is not None:
        conditions.append(audit_log.c.id > after_id)
    if conditions:
        query = query.where(and_(*conditions))
    return (await session.execute(query)).all()


# --------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------


async def count_subscriptions(session: AsyncSession, partner_id: uuid.UUID) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(webhook_subscriptions)
            .where(
                webhook_subscriptions.c.partner_id == partner_id,
                webhook_subscriptions.c.deleted_at.is_(None),
            )
        )
    ).scalar_one()


async def lock_partner(session: AsyncSession, partner_id: uuid.UUID) -> None:
    """Serialise a partner's subscription changes (so its limit holds under races)."""
    await session.execute(
        select(partners.c.id).where(partners.c.id == partner_id).with_for_update()
    )


async def insert_subscription(session: AsyncSession, **values: Any):
    return (
        await session.execute(
            webhook_subscriptions.insert().values(**values).returning(*webhook_subscriptions.c)
        )
    ).one()


async def list_subscriptions(session: AsyncSession, partner_id: uuid.UUID):
    return (
        await session.execute(
            select(webhook_subscriptions)
            .where(
                webhook_subscriptions.c.partner_id == partner_id,
                webhook_subscriptions.c.deleted_at.is_(None),
            )
            .order_by(webhook_subscriptions.c.created_at, webhook_subscriptions.c.id)
        )
    ).all()


async def get_subscription(
    session: AsyncSession, partner_id: uuid.UUID, subscription_id: uuid.UUID
):
    return (
        await session.execute(
            select(webhook_subscriptions).where(
                webhook_subscriptions.c.id == subscription_id,
                webhook_subscriptions.c.partner_id == partner_id,
                webhook_subscriptions.c.deleted_at.is_(None),
            )
        )
    ).first()


async def delete_subscription(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    await session.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == subscription_id)
        .values(deleted_at=func.now())
    )
    await session.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.subscription_id == subscription_id,
            webhook_deliveries.c.status.in_(OPEN_STATUSES),
        )
        .values(status=CANCELLED, leased_until=None)
    )


async def list_deliveries(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    *,
    status: str | None,
    after_id: int | None,
    limit: int,
):
    query = (
        select(webhook_deliveries)
        .where(webhook_deliveries.c.subscription_id == subscription_id)
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    if after_id is not None:
        query = query.where(webhook_deliveries.c.id < after_id)
    return (await session.execute(query)).all()


# Fan status changes out to every live subscription of every partner that can see the
# referral: the partner that made it, the provider it is routed to, and the programme
# office; never to a partner whose every key is revoked or expired. One statement for a
# whole batch of changes, whatever the number of subscribers (the changes travel as one
# JSON document, so the statement's text is fixed).
_FAN_OUT_SQL = text(f"""
    INSERT INTO {SCHEMA}.webhook_deliveries
        (subscription_id, event_id, event_type, referral_id, occurred_at, sequence, payload,
         status, next_attempt_at)
    SELECT s.id, e.event_id, e.event_type, e.referral_id, e.occurred_at, e.sequence, e.payload,
           '{PENDING}', now()
    FROM jsonb_to_recordset(CAST(:changes AS jsonb)) AS e(
        event_id uuid, event_type text, referral_id uuid, occurred_at timestamptz,
        sequence integer, payload jsonb, referrer_id uuid, provider_id uuid)
    JOIN {SCHEMA}.webhook_subscriptions s
      ON s.deleted_at IS NULL AND e.event_type = ANY (s.events)
    JOIN {SCHEMA}.partners p ON p.id = s.partner_id
    WHERE (s.partner_id = e.referrer_id
           OR s.partner_id = e.provider_id
           OR p.kind = '{PartnerKind.PROGRAMME_OFFICE.value}')
      -- A partner locked out (every key revoked or expired) hears nothing more.
      AND EXISTS (
          SELECT 1 FROM {SCHEMA}.api_keys k
          WHERE k.partner_id = s.partner_id AND k.revoked_at IS NULL
            AND (k.expires_at IS NULL OR k.expires_at > now())
      )
    ORDER BY s.id, e.occurred_at, e.sequence, e.event_id
    ON CONFLICT (subscription_id, event_id) DO NOTHING
""")


@dataclass(frozen=True)
class StatusChange:
    """One referral status change, to be delivered to whoever may see it."""

    event_id: uuid.UUID
    event_type: str
    referral_id: uuid.UUID
    occurred_at: datetime
    sequence: int  # the status's place in the referral's history; 0 when unknown
    payload: dict[str, str]
    referrer_id: uuid.UUID
    provider_id: uuid.UUID | None


async def queue_deliveries(session: AsyncSession, changes: Sequence[StatusChange]) -> int:
    """Queue a delivery of each change to each subscription that should hear of it;
    returns how many were queued (each (subscription, event) pair is queued once)."""
    if not changes:
        return 0
    result = await session.execute(
        _FAN_OUT_SQL,
        {"changes": orjson.dumps(list(changes)).decode()},  # orjson writes dataclasses
    )
    return result.rowcount or 0
