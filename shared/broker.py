"""One RabbitMQ connection per service process, and the topology every service shares.

Topology (all durable):

* ``pathways.events`` — a topic exchange; the routing key is the event type.
* ``pathways.<service>`` — the service's queue, bound to the event types it handles.
* ``pathways.<service>.retry.<ms>`` — holding queues: a failed event waits there for
  ``<ms>`` and is dead-lettered straight back onto the service's queue.
* ``pathways.<service>.dlq`` — events that kept failing, with the error in headers.

The process starts even when the broker is down: :meth:`Broker.run` keeps trying to
connect in the background while the outbox keeps every event safe in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class QueueNames:
    service: str

    @property
    def main(self) -> str:
        return f"pathways.{self.service}"

    @property
    def dead_letter(self) -> str:
        return f"pathways.{self.service}.dlq"

    def retry(self, delay_ms: int) -> str:
        return f"pathways.{self.service}.retry.{delay_ms}ms"


class Broker:
    """A robust aio-pika connection that reconnects on its own."""

    def __init__(
        self, url: str, *, exchange: str, queue_type: str = "classic", name: str = "pathways"
    ) -> None:
        self._url = url
        self.exchange_name = exchange
        self.queue_type = queue_type
        self._name = name
        self.connection: AbstractRobustConnection | None = None
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def run(self) -> None:
        """Connect, retrying with backoff until it works; aio-pika then keeps it alive."""
        delay = 0.2
        while self.connection is None:
            try:
                self.connection = await aio_pika.connect_robust(
                    self._url,
                    client_properties={"connection_name": self._name},
                    reconnect_interval=1,
                    timeout=5,
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning(
                    "broker unreachable; retrying", error=type(exc).__name__, retry_in=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._connected.set()
        log.info("broker connected")

    async def channel(
        self, *, confirms: bool = True, prefetch: int | None = None
    ) -> AbstractRobustChannel:
        await self.wait_connected()
        assert self.connection is not None
        channel: AbstractRobustChannel = await self.connection.channel(  # type: ignore[assignment]
            publisher_confirms=confirms
        )
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def declare_exchange(
        self, channel: aio_pika.abc.AbstractChannel
    ) -> aio_pika.abc.AbstractExchange:
        return await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    def queue_arguments(self, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {"x-queue-type": self.queue_type}
        args.update(extra)
        return args

    async def declare_service_queues(
        self,
        channel: aio_pika.abc.AbstractChannel,
        names: QueueNames,
        routing_keys: list[str],
        retry_delays_ms: list[int],
    ) -> aio_pika.abc.AbstractQueue:
        exchange = await self.declare_exchange(channel)
        queue = await channel.declare_queue(
            names.main, durable=True, arguments=self.queue_arguments()
        )
        for key in routing_keys:
            await queue.bind(exchange, routing_key=key)
        for delay in retry_delays_ms:
            extra: dict[str, Any] = {
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.main,
            }
            if self.queue_type == "quorum":
                # Quorum queues dead-letter at-most-once unless told otherwise.
                extra |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
            await channel.declare_queue(
                names.retry(delay), durable=True, arguments=self.queue_arguments(**extra)
            )
        await channel.declare_queue(
            names.dead_letter, durable=True, arguments=self.queue_arguments()
        )
        return queue

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
