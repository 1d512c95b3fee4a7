"""Inbox consumer: every event handled exactly once, failures retried, poison set aside.

Messages are taken in batches of whatever has arrived (up to ``batch_size``). Each
batch is one database transaction: the batch's ``event_id``s go into the inbox in one
statement, and every handler's writes are made in the same transaction. A subscription
may give a *batch handler*, which takes a run of consecutive events at once so it can
apply them with a fixed number of statements (set-based) instead of a few per event;
subscriptions that share one batch handler share its runs. If any handler raises, that
transaction is rolled back and each message of the batch is handled again in a
transaction of its own, so only the failing one is retried (failures are rare; the
common path pays for no savepoints). Messages are acknowledged only after their
transaction commits, a batch with one ``multiple`` ack per channel; a crash between
commit and ack redelivers them, and the inbox recognises them as handled.

A failed event is republished to a holding queue whose TTL returns it to the
service's queue after a delay (``retry_delays_ms``); after the last delay it goes to
the dead-letter queue with the error in its headers, and the queue keeps flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.broker import Broker, QueueNames
from shared.db import is_database_unavailable
from shared.errors import describe_failure
from shared.events.envelope import Envelope, UnknownEvent
from shared.logging import bind_context, get_logger
from shared.observability import Metrics

log = get_logger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
# Applies consecutive events, in the order given, as if one at a time.
BatchHandler = Callable[[AsyncSession, list[Envelope]], Awaitable[None]]

ATTEMPTS_HEADER = "x-pathways-attempts"
ERROR_HEADER = "x-pathways-error"
FAILED_AT_HEADER = "x-pathways-failed-at"
ROUTING_KEY_HEADER = "x-pathways-routing-key"


@dataclass(frozen=True)
class Subscription:
    """Handle events of ``event_type`` (which is also the routing key), one at a time
    with ``handler`` or in runs with ``batch_handler`` (give one of the two)."""

    event_type: str
    handler: Handler | None = None
    versions: frozenset[int] = field(default_factory=lambda: frozenset({1}))
    batch_handler: BatchHandler | None = None

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError(f"{self.event_type}: give a handler or a batch_handler")


@dataclass
class _Work:
    message: AbstractIncomingMessage
    envelope: Envelope
    subscription: Subscription


class _HandlerFailed(Exception):
    """A handler raised: says which event (``work``), when it can, so a batch's failure
    can be attributed; a batch handler's failure names none."""

    def __init__(self, work: _Work | None, cause: Exception) -> None:
        super().__init__(type(cause).__name__)
        self.work = work
        self.cause = cause


class PoisonMessage(Exception):
    """A message no retry can fix: unreadable, or of a type/version we do not handle."""


@dataclass
class _Outcome:
    message: AbstractIncomingMessage
    event_type: str
    error: BaseException | None = None
    poison: bool = False
    duplicate: bool = False


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        broker: Broker,
        session_factory: async_sessionmaker[AsyncSession],
        inbox: Table,
        subscriptions: list[Subscription],
        metrics: Metrics,
        retry_delays_ms: list[int],
        batch_size: int = 200,
        linger_seconds: float = 0.0,
    ) -> None:
        self.names = QueueNames(service)
        self.broker = broker
        self.session_factory = session_factory
        self.inbox = inbox
        self.subscriptions = {s.event_type: s for s in subscriptions}
        self.metrics = metrics
        self.retry_delays_ms = list(retry_delays_ms)
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # One statement of fixed text for any batch size, so it is prepared once.
        table = f'"{inbox.schema}".{inbox.name}' if inbox.schema else inbox.name
        self._record_in_inbox = text(
            f"INSERT INTO {table} (event_id, event_type) "
            "SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) "
            "ON CONFLICT DO NOTHING RETURNING event_id"
        )
        self.ready = asyncio.Event()

    async def run(self) -> None:
        # A second batch's worth in flight, so the next batch is here when one commits.
        consume_channel = await self.broker.channel(confirms=False, prefetch=self.batch_size * 2)
        self._publish_channel = await self.broker.channel(confirms=True)
        queue = await self.broker.declare_service_queues(
            consume_channel, self.names, sorted(self.subscriptions), self.retry_delays_ms
        )
        await queue.consume(self._buffer.put)
        self.ready.set()
        log.info("consuming", queue=self.names.main, events=sorted(self.subscriptions))
        depth_task = asyncio.create_task(self._watch_dead_letters())
        try:
            while True:
                batch = [await self._buffer.get()]
                self._take_waiting(batch)
                if len(batch) < self.batch_size and self.linger_seconds:
                    # More are likely on their way: a moment's wait turns many small
                    # transactions into one (set-based handlers cost per batch).
                    await asyncio.sleep(self.linger_seconds)
                    self._take_waiting(batch)
                await self._process(batch)
        finally:
            depth_task.cancel()

    def _take_waiting(self, batch: list[AbstractIncomingMessage]) -> None:
        while len(batch) < self.batch_size and not self._buffer.empty():
            batch.append(self._buffer.get_nowait())

    async def _process(self, batch: list[AbstractIncomingMessage]) -> None:
        outcomes: list[_Outcome] = []
        runnable: list[_Work] = []
        for message in batch:
            item = self._read(message)
            if isinstance(item, _Outcome):
                outcomes.append(item)
            else:
                runnable.append(item)
        try:
            outcomes += await self._handle_together(runnable)
        except Exception as failure:
            exc = failure.cause if isinstance(failure, _HandlerFailed) else failure
            if is_database_unavailable(exc):
                log.warning(
                    "event batch not handled; will be redelivered",
                    error=type(exc).__name__,
                    size=len(batch),
                )
                await asyncio.sleep(1)  # the database is likely down: don't spin
                for message in batch:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                return
            if len(runnable) == 1:
                poison = isinstance(exc, ValidationError)
                outcomes.append(
                    _Outcome(runnable[0].message, runnable[0].envelope.type, exc, poison)
                )
                runnable = []
            elif isinstance(failure, _HandlerFailed) and failure.work is not None:
                # That was the failing event's attempt: it goes to its retry queue (or the
                # dead-letter queue) as it would have alone, counted once.
                failed = failure.work
                poison = isinstance(exc, ValidationError)
                outcomes.append(_Outcome(failed.message, failed.envelope.type, exc, poison))
                runnable = [work for work in runnable if work is not failed]
                log.warning(
                    "event handler failed in a batch; handling the rest one by one",
                    event_type=failed.envelope.type,
                    error=type(exc).__name__,
                )
            # One of them failed and took the batch's transaction with it: give each
            # its own transaction, so only the failing one is retried.
            for work in runnable:
                try:
                    outcomes += await self._handle_together([work])
                except Exception as alone:
                    if is_database_unavailable(alone):
                        with contextlib.suppress(Exception):
                            await work.message.nack(requeue=True)
                        continue
                    if isinstance(alone, _HandlerFailed):
                        alone = alone.cause
                    poison = isinstance(alone, ValidationError)
                    outcomes.append(_Outcome(work.message, work.envelope.type, alone, poison))
        await self._settle_all(outcomes)

    def _read(self, message: AbstractIncomingMessage) -> _Work | _Outcome:
        """Parse a message, or say why it can never be handled here."""
        event_type = message.routing_key or "unknown"
        try:
            envelope = Envelope.from_bytes(message.body)
        except (ValueError, ValidationError) as exc:
            return _Outcome(message, event_type, PoisonMessage(f"unreadable: {exc}"), poison=True)
        subscription = self.subscriptions.get(envelope.type)
        if subscription is None or envelope.version not in subscription.versions:
            error = UnknownEvent(f"{envelope.type} v{envelope.version} is not handled here")
            return _Outcome(message, envelope.type, error, poison=True)
        return _Work(message, envelope, subscription)

    async def _handle_together(self, batch: list[_Work]) -> list[_Outcome]:
        """Handle events in one transaction: inbox rows and effects commit together.

        Raises if any handler raises; nothing of the batch is then kept.
        """
        if not batch:
            return []
        outcomes: list[_Outcome] = []
        fresh: list[_Work] = []
        async with self.session_factory() as session, session.begin():
            first_seen = set(
                (
                    await session.execute(
                        self._record_in_inbox,
                        {
                            "ids": [w.envelope.event_id for w in batch],
                            "types": [w.envelope.type for w in batch],
                        },
                    )
                ).scalars()
            )
            for work in batch:
                envelope = work.envelope
                if envelope.event_id not in first_seen:
                    outcomes.append(_Outcome(work.message, envelope.type, duplicate=True))
                    continue
                first_seen.discard(envelope.event_id)  # a second copy in this batch is a duplicate
                fresh.append(work)
                outcomes.append(_Outcome(work.message, envelope.type))
            for run in _runs(fresh):
                await _apply_run(session, run)
        return outcomes

    async def _settle_all(self, outcomes: list[_Outcome]) -> None:
        """Handled events are acknowledged together: one ``multiple`` ack per channel
        for its highest delivery tag (every earlier delivery on it is settled by then:
        batches are settled in order). The rest are settled one by one."""
        handled = [o for o in outcomes if o.error is None]
        for outcome in handled:
            self.metrics.events_consumed.labels(
                outcome.event_type, "duplicate" if outcome.duplicate else "handled"
            ).inc()
        if len(handled) == len(outcomes):
            last: dict[int, AbstractIncomingMessage] = {}
            for outcome in handled:
                message = outcome.message
                known = last.get(id(message.channel))
                if known is None or message.delivery_tag > known.delivery_tag:  # type: ignore[operator]
                    last[id(message.channel)] = message
            for message in last.values():
                await _ack(message, multiple=True)
            return
        for outcome in outcomes:
            await self._settle(outcome)

    async def _settle(self, outcome: _Outcome) -> None:
        message = outcome.message
        if outcome.error is None:  # counted by _settle_all
            await _ack(message)
            return
        self.metrics.events_failed.labels(outcome.event_type).inc()
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0) or 0) + 1
        error = describe_failure(outcome.error)
        log.warning(
            "event handler failed",
            event_type=outcome.event_type,
            attempt=attempts,
            error=type(outcome.error).__name__,
        )
        if outcome.poison or attempts > len(self.retry_delays_ms):
            target = self.names.dead_letter
            self.metrics.events_dead_lettered.labels(outcome.event_type).inc()
            log.error(
                "event dead-lettered",
                event_type=outcome.event_type,
                attempts=attempts,
                queue=target,
            )
        else:
            target = self.names.retry(self.retry_delays_ms[attempts - 1])
        headers = dict(message.headers or {})
        headers.update(
            {
                ATTEMPTS_HEADER: attempts,
                ERROR_HEADER: error,
                FAILED_AT_HEADER: datetime.now(UTC).isoformat(),
                ROUTING_KEY_HEADER: headers.get(ROUTING_KEY_HEADER) or message.routing_key or "",
            }
        )
        try:
            await self._publish_channel.default_exchange.publish(
                aio_pika.Message(
                    body=message.body,
                    headers=headers,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=target,
                timeout=10,
            )
        except Exception as exc:
            # Not safely parked elsewhere: leave it on the queue to be tried again.
            log.warning("could not park failed event; requeueing", error=type(exc).__name__)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        await _ack(message)

    async def _watch_dead_letters(self) -> None:
        channel = await self.broker.channel(confirms=False)
        queue = None
        while True:
            with contextlib.suppress(Exception):
                # A robust channel hands back its cached queue (and its first count) on a
                # second declare_queue; re-declaring that queue object asks the broker anew.
                if queue is None:
                    queue = await channel.declare_queue(self.names.dead_letter, passive=True)
                result = await queue.declare()
                self.metrics.dead_letter_depth.set(result.message_count or 0)
            await asyncio.sleep(5)


def _runs(works: list[_Work]) -> list[list[_Work]]:
    """Consecutive events with the same batch handler form one run; an event with a
    one-at-a-time handler is a run of its own."""
    runs: list[list[_Work]] = []
    for work in works:
        batch_handler = work.subscription.batch_handler
        same = runs and runs[-1][0].subscription.batch_handler is batch_handler
        if batch_handler is not None and same:
            runs[-1].append(work)
        else:
            runs.append([work])
    return runs


async def _apply_run(session: AsyncSession, run: list[_Work]) -> None:
    first = run[0]
    batch_handler = first.subscription.batch_handler
    if batch_handler is None:
        envelope = first.envelope
        assert first.subscription.handler is not None
        with bind_context(event_id=str(envelope.event_id), event_type=envelope.type):
            try:
                await first.subscription.handler(session, envelope)
            except Exception as exc:
                raise _HandlerFailed(first, exc) from exc
        return
    try:
        await batch_handler(session, [work.envelope for work in run])
    except Exception as exc:
        raise _HandlerFailed(first if len(run) == 1 else None, exc) from exc


async def _ack(message: AbstractIncomingMessage, *, multiple: bool = False) -> None:
    # If the channel died the broker redelivers; the inbox makes that harmless.
    with contextlib.suppress(Exception):
        await message.ack(multiple=multiple)
