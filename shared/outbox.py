"""Transactional outbox: events are rows written with the state change, then relayed.

A handler calls :meth:`Outbox.add` inside the transaction that changes state; if the
transaction rolls back, the event never existed. :class:`OutboxRelay` publishes
committed rows to RabbitMQ with publisher confirms and marks them sent.

Ordering: rows carry the id of the aggregate they describe and a partition derived
from it. A relay only publishes a partition while it holds that partition's advisory
lock, in id order, so several relay replicas can run at once and a referral's events
still leave in the order they were written. One exception: a batch is published as a
pipeline, so if the broker refuses one message, later ones in the batch may already
be out; the refused one follows on the next attempt. Consumers already tolerate that
(a retried event can always arrive after a later one; see docs/CONTRIBUTING.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from datetime import datetime
from typing import Any

import aio_pika
import asyncpg
import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.broker import Broker
from shared.events.envelope import Envelope, EventPayload, new_envelope
from shared.logging import bind_context, get_logger
from shared.observability import Metrics

log = get_logger(__name__)

PARTITIONS = 64


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("event_type", Text, nullable=False),
        Column("aggregate_id", Text, nullable=False),
        Column("partition", SmallInteger, nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
    )
    Index("ix_outbox_unpublished", table.c.id, postgresql_where=table.c.published_at.is_(None))
    return table


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def partition_of(aggregate_id: str) -> int:
    return zlib.crc32(aggregate_id.encode()) % PARTITIONS


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


class Outbox:
    """Where a service writes the events its transactions produce."""

    def __init__(self, table: Table, *, producer: str) -> None:
        self.table = table
        self.producer = producer

    async def add(
        self,
        session: AsyncSession,
        payload: EventPayload,
        *,
        aggregate_id: uuid.UUID | str,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        envelope = new_envelope(payload, producer=self.producer, occurred_at=occurred_at)
        await session.execute(insert(self.table).values(self._row(envelope, aggregate_id)))
        return envelope

    async def add_many(
        self, session: AsyncSession, items: list[tuple[EventPayload, uuid.UUID | str]]
    ) -> list[Envelope]:
        """Several events in one statement (bulk paths)."""
        if not items:
            return []
        envelopes = [new_envelope(p, producer=self.producer) for p, _ in items]
        rows = [self._row(env, agg) for env, (_, agg) in zip(envelopes, items, strict=True)]
        await session.execute(insert(self.table), rows)
        return envelopes

    def document(
        self, items: list[tuple[EventPayload, uuid.UUID | str]], *, occurred_at: datetime
    ) -> str:
        """Events as the JSON array :func:`insert_document_sql` takes (for statements run on the
        driver's connection, :func:`shared.db.driver_transaction`)."""
        rows = [
            self._row(new_envelope(p, producer=self.producer, occurred_at=occurred_at), agg)
            for p, agg in items
        ]
        return orjson.dumps(rows).decode()

    @staticmethod
    def _row(envelope: Envelope, aggregate_id: uuid.UUID | str) -> dict:
        aggregate = str(aggregate_id)
        return {
            "event_id": envelope.event_id,
            "event_type": envelope.type,
            "aggregate_id": aggregate,
            "partition": partition_of(aggregate),
            "envelope": envelope.model_dump(mode="json"),
        }


def insert_document_sql(table: Table, param: str, *, only_if: str | None = None) -> str:
    """SQL inserting the events of an :meth:`Outbox.document` passed as ``param`` (``$n``),
    in their order; with ``only_if`` (the name of a CTE of the same statement), only if
    that CTE has a row, so the events commit with the state they describe or not at all.
    """
    guard = f"WHERE EXISTS (SELECT 1 FROM {only_if})" if only_if else ""
    return f"""
        INSERT INTO "{table.schema}".{table.name}
            (event_id, event_type, aggregate_id, partition, envelope)
        SELECT CAST(r->>'event_id' AS uuid), r->>'event_type', r->>'aggregate_id',
               CAST(r->>'partition' AS smallint), r->'envelope'
        FROM jsonb_array_elements(CAST({param} AS jsonb)) WITH ORDINALITY AS e(r, n)
        {guard}
        ORDER BY n"""


class OutboxRelay:
    """Publishes committed outbox rows, woken by NOTIFY and by a polling fallback."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        broker: Broker,
        metrics: Metrics,
        dsn: str,
        poll_seconds: float = 0.25,
        batch_size: int = 200,
        retention_days: int = 7,
    ) -> None:
        self.engine = engine
        self.table = table
        self.broker = broker
        self.metrics = metrics
        self.schema = table.schema or "public"
        self.dsn = dsn
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.retention_days = retention_days
        self._wake = asyncio.Event()
        self._lock_class = zlib.crc32(f"{self.schema}.outbox".encode()) & 0x7FFFFFFF
        qualified = f'"{self.schema}".outbox'
        # Each row's partition lock is tried as the scan reaches it; rows of a partition
        # another relay holds are skipped, so two relays never interleave one aggregate.
        self._claim_sql = text(f"""
            SELECT id, event_id, event_type, envelope FROM {qualified}
            WHERE published_at IS NULL
              AND pg_try_advisory_xact_lock(:lock_class, partition)
            ORDER BY id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
        """)
        self._mark_sql = text(f"UPDATE {qualified} SET published_at = now() WHERE id = ANY(:ids)")
        self._fail_sql = text(
            f"UPDATE {qualified} SET attempts = attempts + 1, last_error = :error WHERE id = :id"
        )
        self._backlog_sql = text(f"SELECT count(*) FROM {qualified} WHERE published_at IS NULL")
        self._prune_sql = text(
            f"DELETE FROM {qualified} WHERE published_at < now() - make_interval(days => :days)"
        )

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name=f"{self.schema}-outbox-listen")
        try:
            await self.broker.wait_connected()
            channel = await self.broker.channel(confirms=True)
            exchange = await self.broker.declare_exchange(channel)
            backoff = 0.2
            last_housekeeping = 0.0
            loop = asyncio.get_running_loop()
            while True:
                # Cleared before looking, not after: a commit's NOTIFY that lands while a
                # batch is out then starts the next look at once, instead of being wiped
                # and leaving its row for the next poll.
                self._wake.clear()
                try:
                    while await self.publish_batch(exchange) >= self.batch_size:
                        pass
                    backoff = 0.2
                    if loop.time() - last_housekeeping > 5:
                        await self._housekeeping()
                        last_housekeeping = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "outbox relay stalled; retrying", error=type(exc).__name__, retry_in=backoff
                    )
                    # The backlog gauge matters most while the broker is away: keep it current.
                    if loop.time() - last_housekeeping > 5:
                        with contextlib.suppress(Exception):
                            await self._housekeeping()
                        last_housekeeping = loop.time()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancel that lands as the wake does, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def publish_batch(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        """Publish up to one batch; returns how many rows were published.

        The batch's messages are all sent before any confirm is awaited (one round trip
        for the batch, not one per event). They still leave in id order: each publish
        takes the channel's lock, FIFO, in the order the publishes were started. Rows
        the broker did not confirm stay for the next attempt, and those it did confirm
        are marked first, so a failure part-way never publishes them twice.
        """
        error: BaseException | None = None
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    self._claim_sql, {"lock_class": self._lock_class, "limit": self.batch_size}
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self._publish(exchange, row) for row in rows), return_exceptions=True
            )
            published: list[int] = []
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException):
                    if error is None:
                        error = result
                        await conn.execute(
                            self._fail_sql, {"id": row.id, "error": type(result).__name__}
                        )
                else:
                    published.append(row.id)
                    self.metrics.events_published.labels(row.event_type).inc()
            if published:
                await conn.execute(self._mark_sql, {"ids": published})
        # Raised once what was confirmed is marked, so it is not published again.
        if error is not None:
            raise error
        return len(published)

    async def _publish(self, exchange: aio_pika.abc.AbstractExchange, row: Any) -> None:
        envelope = row.envelope  # already the envelope's JSON form, as it was written
        with bind_context(event_id=str(row.event_id)):
            await exchange.publish(
                aio_pika.Message(
                    body=orjson.dumps(envelope),
                    message_id=str(row.event_id),
                    type=row.event_type,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    timestamp=datetime.fromisoformat(envelope["occurred_at"]),
                ),
                routing_key=row.event_type,
                mandatory=False,  # an event nobody consumes yet is not an error
                timeout=10,
            )

    async def _housekeeping(self) -> None:
        async with self.engine.begin() as conn:
            backlog = (await conn.execute(self._backlog_sql)).scalar_one()
            self.metrics.outbox_backlog.set(backlog)
            await conn.execute(self._prune_sql, {"days": self.retention_days})

    async def _listen(self) -> None:
        """Wake on NOTIFY from the outbox trigger, so a commit is relayed at once."""
        channel = notify_channel(self.schema)
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                await conn.add_listener(channel, lambda *_: self._wake.set())
                self._wake.set()  # catch up on anything committed while not listening
                while not conn.is_closed():
                    await asyncio.sleep(2)
                    await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("outbox listener reconnecting", error=type(exc).__name__)
                await asyncio.sleep(1)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain libpq form of a ``postgresql+asyncpg://`` URL, for asyncpg itself."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
