"""Look into and re-drive a service's dead-letter queue.

After fixing whatever made events fail (a bug, a missing definition), move them back
onto the service's queue; the inbox keeps any that had in fact been applied from
being applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika

from shared.broker import QueueNames
from shared.consumer import ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER, ROUTING_KEY_HEADER


@dataclass
class DeadLetter:
    message_id: str | None
    routing_key: str
    attempts: int
    error: str
    failed_at: str


async def peek(amqp_url: str, service: str, limit: int = 50) -> list[DeadLetter]:
    """The first ``limit`` dead letters, left where they are."""
    names = QueueNames(service)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names.dead_letter, passive=True)
        seen: list[DeadLetter] = []
        messages = []
        while len(seen) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            messages.append(message)
            headers = message.headers or {}
            seen.append(
                DeadLetter(
                    message_id=message.message_id,
                    routing_key=str(headers.get(ROUTING_KEY_HEADER, "")),
                    attempts=int(headers.get(ATTEMPTS_HEADER, 0) or 0),
                    error=str(headers.get(ERROR_HEADER, "")),
                    failed_at=str(headers.get(FAILED_AT_HEADER, "")),
                )
            )
        for message in messages:
            await message.nack(requeue=True)
        return seen


async def redrive(amqp_url: str, service: str, limit: int | None = None) -> int:
    """Move dead letters back to the service's queue with a fresh retry budget."""
    names = QueueNames(service)
    connection = await aio_pika.connect(amqp_url)
    moved = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(names.dead_letter, passive=True)
        while limit is None or moved < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in (ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER)
            }
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    headers=headers,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=names.main,
            )
            await message.ack()  # only once the copy is confirmed on the main queue
            moved += 1
    return moved
