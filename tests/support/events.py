"""Put events on the real broker as another service would, and read what a service wrote
to its outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aio_pika
from sqlalchemy import select

from pathways.sandbox import Sandbox
from shared.events.envelope import Envelope, EventPayload, new_envelope, parse_payload
from shared.service import ServiceRuntime

T = TypeVar("T")


async def publish(
    sandbox: Sandbox, *payloads: EventPayload | Envelope, producer: str = "test"
) -> list[Envelope]:
    """Publish events on the sandbox's exchange, in order, with confirms; an envelope
    given whole (to choose its event id, say) goes out as it is."""
    envelopes = [
        p if isinstance(p, Envelope) else new_envelope(p, producer=producer) for p in payloads
    ]
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        for envelope in envelopes:
            await exchange.publish(event_message(envelope), routing_key=envelope.type)
    return envelopes


class Answerer:
    """Plays another service in a test: answers each event of one type published from
    ``start`` on with what ``answer`` returns (``None``: no answer, as a service that is
    down or does not know it)."""

    def __init__(
        self,
        sandbox: Sandbox,
        event_type: str,
        answer: Callable[[EventPayload], EventPayload | None],
        *,
        producer: str,
    ) -> None:
        self.sandbox = sandbox
        self.event_type = event_type
        self.answer = answer
        self.producer = producer
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.sandbox.config.amqp_url)
        channel = await self._connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, self.event_type)

        async def reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                answer = self.answer(parse_payload(Envelope.from_bytes(message.body)))
                if answer is not None:
                    envelope = new_envelope(answer, producer=self.producer)
                    await exchange.publish(event_message(envelope), routing_key=envelope.type)

        await queue.consume(reply)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def event_message(envelope: Envelope) -> aio_pika.Message:
    """The message a service's outbox relay would send for ``envelope``."""
    return aio_pika.Message(
        body=envelope.to_bytes(),
        message_id=str(envelope.event_id),
        type=envelope.type,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def outbox_events(runtime: ServiceRuntime, event_type: str | None = None) -> list[Envelope]:
    """Every event the service has written to its outbox, oldest first."""
    assert runtime.outbox is not None
    table = runtime.outbox.table
    query = select(table.c.envelope).order_by(table.c.id)
    if event_type:
        query = query.where(table.c.event_type == event_type)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(query)).scalars().all()
    return [Envelope.model_validate(row) for row in rows]


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Retry an async assertion until it passes (events are asynchronous)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(interval)


def payload_of(envelope: Envelope) -> dict[str, Any]:
    return envelope.payload
