"""The floor doing the platform's writes: the measure for re-basing the intake goal.

bench/floor.py is the floor the issue defines: validate, one INSERT. Intake does more
than that before its ``201``: the referral and its events commit together (the
transactional outbox) and a relay publishes them to RabbitMQ. This floor does that
much and no more, with the platform's own parts: the same ``ReferralIn`` validation,
one statement inserting the referral and its two events (received, then accepted,
as an eligible referral has) into an outbox, and :class:`shared.outbox.OutboxRelay`
publishing them, woken by the same NOTIFY trigger, to a queue of its own. No
gateway, no authentication, no duplicate check, no consumers.

    uvicorn bench.floor_outbox:app --port 9001
    (FLOOR_DSN=postgresql://..., FLOOR_AMQP_URL=amqp://... in the environment)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from bench.floor import SCHEMA_SQL, created, health
from services.referrals.api.models import ReferralIn
from shared.broker import Broker
from shared.db import create_engine
from shared.migrations import outbox_notify_trigger_sql
from shared.observability import Metrics
from shared.outbox import OutboxRelay, outbox_table, partition_of

SCHEMA = "floor"
EXCHANGE = "floor.events"
QUEUE = "floor.events"
EVENT_TYPES = ("floor.referral.received", "floor.referral.accepted")

outbox = outbox_table(MetaData(schema=SCHEMA))

INSERT_WITH_EVENTS_SQL = f"""
    WITH referral AS (
        INSERT INTO {SCHEMA}.referrals (id, external_ref, programme, body)
        VALUES ($1, $2, $3, $4) RETURNING id
    )
    INSERT INTO {SCHEMA}.outbox (event_id, event_type, aggregate_id, partition, envelope)
    SELECT CAST(r->>'event_id' AS uuid), r->>'event_type', r->>'aggregate_id',
           CAST(r->>'partition' AS smallint), r->'envelope'
    FROM jsonb_array_elements(CAST($5 AS jsonb)) WITH ORDINALITY AS e(r, n), referral
    ORDER BY n
"""


def _schema_sql() -> list[str]:
    dialect = postgresql.dialect()
    return [
        SCHEMA_SQL,
        str(CreateTable(outbox, if_not_exists=True).compile(dialect=dialect)),
        *(str(CreateIndex(i, if_not_exists=True).compile(dialect=dialect)) for i in outbox.indexes),
        f"DROP TRIGGER IF EXISTS outbox_notify ON {SCHEMA}.outbox",
        *outbox_notify_trigger_sql(SCHEMA),
    ]


def events_document(referral_id: uuid.UUID, at: datetime) -> bytes:
    """The referral's two events as outbox rows, each with an envelope of the shape the
    platform's carry (who, what, when, and a payload of ids and codes)."""
    aggregate = str(referral_id)
    rows = []
    for event_type in EVENT_TYPES:
        event_id = str(uuid.uuid4())
        rows.append(
            {
                "event_id": event_id,
                "event_type": event_type,
                "aggregate_id": aggregate,
                "partition": partition_of(aggregate),
                "envelope": {
                    "event_id": event_id,
                    "type": event_type,
                    "version": 1,
                    "producer": "floor",
                    "occurred_at": at.isoformat(),
                    "data": {"referral_id": aggregate, "status": event_type.rsplit(".", 1)[1]},
                },
            }
        )
    return orjson.dumps(rows)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = os.environ["FLOOR_DSN"]
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    async with pool.acquire() as conn:
        for statement in _schema_sql():
            await conn.execute(statement)
    broker = Broker(os.environ["FLOOR_AMQP_URL"], exchange=EXCHANGE, name="bench-floor")
    broker_task = asyncio.create_task(broker.run())
    await broker.wait_connected()
    # The events land in a durable queue, as the platform's do in its consumers'.
    channel = await broker.channel()
    exchange = await broker.declare_exchange(channel)
    # Nobody consumes them; the oldest are dropped so a long run cannot fill the disk.
    queue = await channel.declare_queue(QUEUE, durable=True, arguments={"x-max-length": 100_000})
    await queue.bind(exchange, routing_key="floor.#")
    engine = create_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1), schema=SCHEMA)
    relay = OutboxRelay(
        engine=engine, table=outbox, broker=broker, metrics=Metrics("floor"), dsn=dsn
    )
    relay_task = asyncio.create_task(relay.run())
    app.state.pool = pool
    try:
        yield
    finally:
        for task in (relay_task, broker_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.close()
        await broker.close()
        await engine.dispose()
        await pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None)


@app.post("/v1/referrals", status_code=201)
async def create(referral: ReferralIn, request: Request) -> Response:
    referral_id = uuid.uuid4()
    await request.app.state.pool.execute(
        INSERT_WITH_EVENTS_SQL,
        referral_id,
        referral.external_ref,
        referral.programme,
        referral.model_dump_json(),
        events_document(referral_id, datetime.now(UTC)).decode(),
    )
    return created(referral_id, "accepted")


app.add_api_route("/health", health, methods=["GET"])


@app.get("/backlog")
async def backlog(request: Request) -> dict[str, int]:
    """Events not yet relayed: the benchmark waits for none before its next run."""
    count = await request.app.state.pool.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.outbox WHERE published_at IS NULL"
    )
    return {"unpublished": count}
