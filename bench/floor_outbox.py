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
from typing import ClassVar

import aio_pika
import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import MetaData

from bench.floor import SCHEMA_SQL, created, health
from services.referrals.api.models import ReferralIn
from shared.broker import Broker
from shared.db import create_engine
from shared.events.envelope import EventPayload
from shared.migrations import outbox_notify_trigger_sql
from shared.observability import Metrics
from shared.outbox import Outbox, OutboxRelay, insert_document_sql, outbox_table

SCHEMA = "floor"
EXCHANGE = "floor.events"
QUEUE = "floor.events"


class _StatusChanged(EventPayload):
    referral_id: uuid.UUID


class ReferralReceived(_StatusChanged):
    event_type: ClassVar[str] = "floor.referral.received"


class ReferralAccepted(_StatusChanged):
    event_type: ClassVar[str] = "floor.referral.accepted"


# What an eligible referral publishes: received, then accepted.
EVENTS = (ReferralReceived, ReferralAccepted)
EVENT_TYPES = tuple(event.event_type for event in EVENTS)

outbox_rows = outbox_table(MetaData(schema=SCHEMA))
outbox = Outbox(outbox_rows, producer="floor")

INSERT_WITH_EVENTS_SQL = f"""
    WITH referral AS (
        INSERT INTO {SCHEMA}.referrals (id, external_ref, programme, body)
        VALUES ($1, $2, $3, $4) RETURNING id
    )
    {insert_document_sql(outbox_rows, "$5", only_if="referral")}
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = os.environ["FLOOR_DSN"]
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    engine = create_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1), schema=SCHEMA)
    await pool.execute(SCHEMA_SQL)
    async with engine.begin() as conn:
        await conn.run_sync(outbox_rows.metadata.create_all)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DROP TRIGGER IF EXISTS outbox_notify ON {SCHEMA}.outbox")
        for statement in outbox_notify_trigger_sql(SCHEMA):
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
    relay = OutboxRelay(
        engine=engine, table=outbox_rows, broker=broker, metrics=Metrics("floor"), dsn=dsn
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
        outbox.document(
            [(event(referral_id=referral_id), referral_id) for event in EVENTS],
            occurred_at=datetime.now(UTC),
        ),
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
