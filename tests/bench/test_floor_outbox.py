"""The floor with the outbox (bench/floor_outbox.py) does the writes and publishing it
claims to, against the real PostgreSQL and RabbitMQ: otherwise the re-based ratio in
RESULTS.md would compare intake with less work than it says."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from bench import floor_outbox
from pathways.sandbox import Sandbox
from tests.support.builders import referral_body
from tests.support.events import eventually


@pytest.fixture
def dsn(sandbox: Sandbox) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{sandbox.config.database}"


@pytest_asyncio.fixture
async def client(
    sandbox: Sandbox, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("FLOOR_DSN", dsn)
    monkeypatch.setenv("FLOOR_AMQP_URL", sandbox.config.amqp_url)
    app = floor_outbox.app
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://floor") as c,
    ):
        yield c


@pytest_asyncio.fixture
async def queue(sandbox: Sandbox, client: httpx.AsyncClient) -> AsyncIterator[Any]:
    """The floor's own queue (declared by its start-up), emptied of earlier tests' events."""
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.get_queue(floor_outbox.QUEUE, ensure=True)
        await declared.purge()
        yield declared
    finally:
        await connection.close()


async def _counts(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        referrals = await conn.fetchval("SELECT count(*) FROM floor.referrals")
        events = await conn.fetchval("SELECT count(*) FROM floor.outbox")
        return referrals, events
    finally:
        await conn.close()


async def test_a_referral_commits_with_its_two_events_and_the_relay_publishes_them(
    client: httpx.AsyncClient, queue: Any, dsn: str
) -> None:
    before = await _counts(dsn)
    response = await client.post("/v1/referrals", json=referral_body("WW"))
    assert response.status_code == 201
    referral_id = response.json()["id"]
    assert uuid.UUID(referral_id).version == 4
    assert await _counts(dsn) == (before[0] + 1, before[1] + 2)

    messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def both_published() -> None:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            messages.append(message)
        assert len(messages) == 2

    await eventually(both_published, timeout=10)
    assert [m.routing_key for m in messages] == list(floor_outbox.EVENT_TYPES)
    for message, event_type in zip(messages, floor_outbox.EVENT_TYPES, strict=True):
        envelope = orjson.loads(message.body)
        assert envelope["type"] == event_type
        assert envelope["payload"] == {"referral_id": referral_id}
        assert envelope["producer"] == "floor"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (await client.get("/backlog")).json() == {"unpublished": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"consent": None},
        {"person": {"nino": "not a nino"}},
        {"external_ref": ""},
    ],
    ids=["no consent", "bad nino", "empty external_ref"],
)
async def test_a_body_the_platform_would_refuse_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient, dsn: str, change: dict[str, Any]
) -> None:
    before = await _counts(dsn)
    response = await client.post("/v1/referrals", json=referral_body("WW", **change))
    assert response.status_code == 422
    assert await _counts(dsn) == before
