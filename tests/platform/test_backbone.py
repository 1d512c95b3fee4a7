"""The event backbone against the real PostgreSQL and RabbitMQ.

Each test builds a small "toy" service of its own (schema, outbox, inbox, queue) with
the shared outbox relay and inbox consumer, so the guarantees are proven on the very
code every service runs, without any service's business rules in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pathways.sandbox import Sandbox
from shared.broker import Broker, QueueNames
from shared.consumer import ATTEMPTS_HEADER, ERROR_HEADER, EventConsumer, Subscription
from shared.db import create_engine, create_session_factory, service_metadata
from shared.events.envelope import Envelope, EventPayload, parse_payload, register
from shared.migrations import outbox_notify_trigger_sql
from shared.observability import Metrics
from shared.outbox import Outbox, OutboxRelay, asyncpg_dsn, inbox_table, outbox_table
from tests.support.events import eventually
from tests.support.tasks import assert_stops_if_cancelled_as_woken
from tests.support.tcpproxy import TcpProxy

RETRY_DELAYS_MS = [50, 100, 200]


@register
class ToyHappened(EventPayload):
    event_type = "toy.thing.happened"

    aggregate: str
    seq: int
    fail_times: int = 0  # the handler raises this many times before succeeding
    poison: bool = False  # the handler always raises


@dataclass
class Toy:
    name: str
    sandbox: Sandbox
    engine: AsyncEngine
    outbox: Outbox
    inbox: Table
    applied: Table
    failures: dict[uuid.UUID, int] = field(default_factory=dict)
    tasks: list[asyncio.Task] = field(default_factory=list)
    handled_calls: int = 0
    runs: list[int] = field(default_factory=list)  # lengths of the runs a batch handler got

    @property
    def queues(self) -> QueueNames:
        return QueueNames(self.name)

    def broker(self, url: str | None = None) -> Broker:
        return Broker(
            url or self.sandbox.config.amqp_url, exchange="pathways.events", name=self.name
        )

    async def write_many(self, events: list[ToyHappened]) -> None:
        """Several events committed together, so they reach a consumer as a burst."""
        async with create_session_factory(self.engine)() as session:
            for event in events:
                await self.outbox.add(session, event, aggregate_id=event.aggregate)
            await session.commit()

    async def write(self, aggregate: str, seq: int, *, commit: bool = True, **extra) -> Envelope:
        async with create_session_factory(self.engine)() as session:
            envelope = await self.outbox.add(
                session, ToyHappened(aggregate=aggregate, seq=seq, **extra), aggregate_id=aggregate
            )
            if commit:
                await session.commit()
            else:
                await session.rollback()
        return envelope

    async def handle(self, session: AsyncSession, envelope: Envelope) -> None:
        self.handled_calls += 1
        event = parse_payload(envelope)
        assert isinstance(event, ToyHappened)
        if event.poison:
            raise RuntimeError("this event can never be applied")
        seen = self.failures.get(envelope.event_id, 0)
        if seen < event.fail_times:
            self.failures[envelope.event_id] = seen + 1
            raise RuntimeError(f"transient failure {seen + 1}")
        await session.execute(
            insert(self.applied).values(
                event_id=envelope.event_id, aggregate=event.aggregate, seq=event.seq
            )
        )

    async def handle_run(self, session: AsyncSession, envelopes: list[Envelope]) -> None:
        """A set-based batch handler: one statement for the run, and the whole run
        fails if one of its events cannot be applied."""
        self.runs.append(len(envelopes))
        events = [parse_payload(e) for e in envelopes]
        if any(isinstance(e, ToyHappened) and e.poison for e in events):
            raise RuntimeError("this event can never be applied")
        await session.execute(
            insert(self.applied),
            [
                {"event_id": envelope.event_id, "aggregate": event.aggregate, "seq": event.seq}
                for envelope, event in zip(envelopes, events, strict=True)
                if isinstance(event, ToyHappened)
            ],
        )

    def start_relay(
        self, broker: Broker, metrics: Metrics | None = None, *, poll_seconds: float = 0.1
    ) -> OutboxRelay:
        relay = OutboxRelay(
            engine=self.engine,
            table=self.outbox.table,
            broker=broker,
            metrics=metrics or Metrics(self.name),
            dsn=asyncpg_dsn(self.admin_url),
            poll_seconds=poll_seconds,
        )
        self.tasks.append(asyncio.create_task(broker.run()))
        self.tasks.append(asyncio.create_task(relay.run()))
        return relay

    async def start_consumer(
        self,
        broker: Broker,
        metrics: Metrics | None = None,
        handler: Callable[[AsyncSession, Envelope], Awaitable[None]] | None = None,
        *,
        batched: bool = False,
        linger_seconds: float = 0.0,
    ) -> EventConsumer:
        subscription = (
            Subscription(ToyHappened.event_type, batch_handler=self.handle_run)
            if batched
            else Subscription(ToyHappened.event_type, handler or self.handle)
        )
        consumer = EventConsumer(
            service=self.name,
            broker=broker,
            session_factory=create_session_factory(self.engine),
            inbox=self.inbox,
            subscriptions=[subscription],
            metrics=metrics or Metrics(self.name),
            retry_delays_ms=RETRY_DELAYS_MS,
            linger_seconds=linger_seconds,
        )
        self.tasks.append(asyncio.create_task(broker.run()))
        self.tasks.append(asyncio.create_task(consumer.run()))
        await asyncio.wait_for(consumer.ready.wait(), 10)
        return consumer

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.sandbox.config.database}"

    async def applied_rows(self) -> list[tuple[str, int]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(self.applied.c.aggregate, self.applied.c.seq).order_by(
                    self.applied.c.applied_id
                )
            )
            return [tuple(r) for r in rows]

    async def wait_applied(self, count: int, timeout: float = 15) -> list[tuple[str, int]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rows = await self.applied_rows()
            if len(rows) >= count or loop.time() > deadline:
                return rows
            await asyncio.sleep(0.05)

    async def unpublished(self) -> int:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(func.count())
                    .select_from(self.outbox.table)
                    .where(self.outbox.table.c.published_at.is_(None))
                )
            ).scalar_one()

    async def wait_published(self, timeout: float = 5) -> None:
        """Until the relay has published everything written so far."""

        async def none_left() -> None:
            assert await self.unpublished() == 0

        await eventually(none_left, timeout=timeout)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()


@pytest_asyncio.fixture
async def toy(sandbox: Sandbox) -> AsyncIterator[Toy]:
    name = f"toy_{secrets.token_hex(4)}"
    metadata = service_metadata(name)
    outbox = outbox_table(metadata)
    inbox = inbox_table(metadata)
    applied = Table(
        "applied",
        metadata,
        Column("applied_id", Integer, primary_key=True, autoincrement=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("aggregate", Text, nullable=False),
        Column("seq", Integer, nullable=False),
    )
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{sandbox.config.database}"
    engine = create_engine(url, schema=name, pool_size=5)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        await conn.run_sync(metadata.create_all)
        for statement in outbox_notify_trigger_sql(name):
            await conn.execute(text(statement))
    toy = Toy(name, sandbox, engine, Outbox(outbox, producer=name), inbox, applied)
    try:
        yield toy
    finally:
        await toy.stop()
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await engine.dispose()


async def test_events_are_relayed_and_each_handled_once(toy: Toy) -> None:
    toy.start_relay(toy.broker())
    await toy.start_consumer(toy.broker())
    for seq in range(10):
        await toy.write("agg-1", seq)
    rows = await toy.wait_applied(10)
    assert rows == [("agg-1", seq) for seq in range(10)]
    # The relay marks a row only after the broker confirms it, which can be after the
    # consumer has already applied it: wait for the mark rather than race it.
    await toy.wait_published()


async def test_a_relay_stopped_just_as_it_is_woken_stops(toy: Toy) -> None:
    """Shutdown must not hang on the relay: a cancel landing in the same moment as a
    wake-up (a commit's NOTIFY) still stops it."""
    relay = toy.start_relay(toy.broker())
    await toy.write("agg-1", 0)
    await toy.wait_published()
    await asyncio.sleep(0.2)  # idle: waiting to be woken
    await assert_stops_if_cancelled_as_woken(toy.tasks[-1], relay._wake, "the relay")


async def test_a_commit_announced_while_a_batch_is_out_is_relayed_without_the_poll(
    toy: Toy,
) -> None:
    """The NOTIFY of a row committed while the relay is publishing must not be lost: the
    row goes out straight after that batch, not at the next poll (half a minute here)."""
    relay = toy.start_relay(toy.broker(), poll_seconds=30)
    real_publish = relay._publish
    publishing, release = asyncio.Event(), asyncio.Event()

    async def held(exchange, row) -> None:
        if row.envelope["payload"]["aggregate"] == "agg-1":
            publishing.set()
            await release.wait()
        await real_publish(exchange, row)

    relay._publish = held  # type: ignore[method-assign]
    await toy.write("agg-1", 0)
    await asyncio.wait_for(publishing.wait(), timeout=10)
    await toy.write("agg-2", 0)  # committed, and announced, while agg-1's batch is out

    async def announced() -> None:
        assert relay._wake.is_set()

    await eventually(announced, timeout=5)
    release.set()

    await toy.wait_published(timeout=5)


async def _burst_for_a_batch_consumer(toy: Toy, events: list[ToyHappened]) -> Metrics:
    """Queue a burst before the consumer starts, so it arrives as one delivery."""
    declaring = toy.broker()
    await toy.start_consumer(declaring, batched=True)  # declares the queue
    await toy.stop()
    await declaring.close()  # its consumer must not take the burst
    toy.start_relay(toy.broker())
    await toy.write_many(events)
    await toy.wait_published()
    metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), metrics, batched=True, linger_seconds=0.2)
    return metrics


async def test_a_batch_handler_gets_a_burst_as_runs_and_applies_each_event_once(
    toy: Toy,
) -> None:
    events = [ToyHappened(aggregate=f"agg-{n % 3}", seq=n) for n in range(60)]
    metrics = await _burst_for_a_batch_consumer(toy, events)
    rows = await toy.wait_applied(60)
    assert sorted(rows) == sorted((e.aggregate, e.seq) for e in events)
    assert sum(toy.runs) == 60
    assert max(toy.runs) > 1  # set-based: the burst did not go one event at a time
    handled = metrics.events_consumed.labels(ToyHappened.event_type, "handled")._value.get()
    assert handled == 60


async def test_a_run_that_fails_falls_back_to_one_event_at_a_time(toy: Toy) -> None:
    events = [ToyHappened(aggregate="agg", seq=n, poison=n == 7) for n in range(20)]
    metrics = await _burst_for_a_batch_consumer(toy, events)
    rows = await toy.wait_applied(19)
    # Every good event is applied once; only the poisoned one is retried, then parked.
    assert sorted(rows) == [("agg", n) for n in range(20) if n != 7]
    dead = await _dead_letters(toy, 1, timeout=15)
    assert [parse_payload(Envelope.from_bytes(m.body)).seq for m in dead] == [7]
    assert metrics.events_dead_lettered.labels(ToyHappened.event_type)._value.get() == 1
    assert toy.runs.count(1) >= 20  # the fallback handed each event over on its own


async def test_a_publish_refused_mid_batch_leaves_the_rest_published_once(toy: Toy) -> None:
    """The relay sends a batch before awaiting confirms: when one is refused, those
    confirmed are marked sent (never sent again) and the refused one follows later."""
    consumer_metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), consumer_metrics)
    await toy.write_many([ToyHappened(aggregate=f"agg-{n}", seq=n) for n in range(10)])
    relay_metrics = Metrics(toy.name)
    relay = toy.start_relay(toy.broker(), relay_metrics)
    real_publish = relay._publish
    refused: list[int] = []

    async def refuse_once(exchange, row) -> None:
        if row.envelope["payload"]["seq"] == 3 and not refused:
            refused.append(row.id)
            raise aio_pika.exceptions.DeliveryError(None, None)
        await real_publish(exchange, row)

    relay._publish = refuse_once  # type: ignore[method-assign]
    rows = await toy.wait_applied(10)
    assert sorted(rows) == [(f"agg-{n}", n) for n in range(10)]
    assert len(refused) == 1
    async with toy.engine.connect() as conn:
        attempts, last_error = (
            await conn.execute(
                select(toy.outbox.table.c.attempts, toy.outbox.table.c.last_error).where(
                    toy.outbox.table.c.id == refused[0]
                )
            )
        ).one()
    assert (attempts, last_error) == (1, "DeliveryError")
    published = relay_metrics.events_published.labels(ToyHappened.event_type)._value.get()
    assert published == 10  # nine in the first batch, the refused one after; none twice
    duplicates = consumer_metrics.events_consumed.labels(ToyHappened.event_type, "duplicate")
    assert duplicates._value.get() == 0
    await toy.wait_published()


def test_a_subscription_names_exactly_one_kind_of_handler() -> None:
    async def one(session: AsyncSession, envelope: Envelope) -> None: ...

    async def run(session: AsyncSession, envelopes: list[Envelope]) -> None: ...

    with pytest.raises(ValueError, match="give a handler or a batch_handler"):
        Subscription(ToyHappened.event_type)
    with pytest.raises(ValueError, match="give a handler or a batch_handler"):
        Subscription(ToyHappened.event_type, one, batch_handler=run)


async def test_an_event_written_while_the_broker_is_unreachable_is_delivered_when_it_returns(
    toy: Toy,
) -> None:
    proxy = await TcpProxy("127.0.0.1", 5672).start()
    try:
        vhost_path = toy.sandbox.config.amqp_url.rsplit("/", 1)[-1]
        relay_broker = toy.broker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost_path}")
        toy.start_relay(relay_broker)
        await toy.start_consumer(toy.broker())
        await toy.write("before", 0)
        assert await toy.wait_applied(1) == [("before", 0)]

        await proxy.cut()
        for seq in range(1, 21):
            await toy.write("during", seq)
        await asyncio.sleep(1.5)
        # Nothing can reach the broker, and nothing is lost: it waits in the outbox.
        assert await toy.applied_rows() == [("before", 0)]
        assert await toy.unpublished() == 20

        proxy.restore()
        rows = await toy.wait_applied(21, timeout=30)
        assert rows == [("before", 0)] + [("during", seq) for seq in range(1, 21)]
        await toy.wait_published()
    finally:
        await proxy.close()


async def test_a_rolled_back_state_change_publishes_nothing(toy: Toy) -> None:
    toy.start_relay(toy.broker())
    await toy.start_consumer(toy.broker())
    await toy.write("kept", 1)
    await toy.write("discarded", 2, commit=False)
    await toy.write("kept", 3)
    rows = await toy.wait_applied(2)
    await asyncio.sleep(0.5)
    assert await toy.applied_rows() == rows == [("kept", 1), ("kept", 3)]
    async with toy.engine.connect() as conn:
        stored = (await conn.execute(select(toy.outbox.table.c.aggregate_id))).scalars().all()
    assert stored == ["kept", "kept"]


async def test_a_consumer_that_dies_after_commit_before_ack_does_not_apply_twice(
    toy: Toy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commit the handler's effects, then 'crash' before acknowledging: the broker
    redelivers to the next consumer, and the inbox recognises the event."""
    import shared.consumer as consumer_module

    toy.start_relay(toy.broker())
    committed = asyncio.Event()

    async def crash_instead_of_ack(message, *, multiple: bool = False) -> None:
        committed.set()
        raise asyncio.CancelledError  # the process is gone before the ack is sent

    monkeypatch.setattr(consumer_module, "_ack", crash_instead_of_ack)
    first_broker = toy.broker()
    first_metrics = Metrics(toy.name)
    await toy.start_consumer(first_broker, first_metrics)
    await toy.write("once", 1)
    await asyncio.wait_for(committed.wait(), 10)
    assert await toy.applied_rows() == [("once", 1)]

    # The crashed consumer's connection closes; its unacknowledged message returns.
    await first_broker.close()
    monkeypatch.undo()
    second_metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), second_metrics)
    for _ in range(100):
        if second_metrics.events_consumed.labels(ToyHappened.event_type, "duplicate")._value.get():
            break
        await asyncio.sleep(0.05)
    assert (
        second_metrics.events_consumed.labels(ToyHappened.event_type, "duplicate")._value.get() == 1
    )
    assert await toy.applied_rows() == [("once", 1)]
    assert toy.handled_calls == 1


async def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(toy: Toy) -> None:
    toy.start_relay(toy.broker())
    metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), metrics)
    await toy.write("flaky", 1, fail_times=2)
    rows = await toy.wait_applied(1)
    assert rows == [("flaky", 1)]
    assert metrics.events_failed.labels(ToyHappened.event_type)._value.get() == 2
    assert metrics.events_dead_lettered.labels(ToyHappened.event_type)._value.get() == 0


async def _dead_letters(
    toy: Toy, expected: int, timeout: float = 10
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(toy.sandbox.config.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(toy.queues.dead_letter, passive=True)
        found: list[aio_pika.abc.AbstractIncomingMessage] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found) < expected and loop.time() < deadline:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                found.append(message)
        return found
    finally:
        await connection.close()


async def test_a_poison_event_is_dead_lettered_with_its_error_and_the_rest_keep_flowing(
    toy: Toy,
) -> None:
    toy.start_relay(toy.broker())
    metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), metrics)
    await toy.write("stream", 1, poison=True)
    await toy.write("stream", 2)
    await toy.write("stream", 3)
    assert await toy.wait_applied(2) == [("stream", 2), ("stream", 3)]

    [dead] = await _dead_letters(toy, 1)
    assert Envelope.from_bytes(dead.body).payload["seq"] == 1
    assert dead.headers[ATTEMPTS_HEADER] == len(RETRY_DELAYS_MS) + 1
    assert "this event can never be applied" in dead.headers[ERROR_HEADER]
    assert metrics.events_dead_lettered.labels(ToyHappened.event_type)._value.get() == 1
    assert metrics.events_failed.labels(ToyHappened.event_type)._value.get() == 4


async def test_an_unreadable_message_is_dead_lettered_at_once(toy: Toy) -> None:
    metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), metrics)
    toy.start_relay(toy.broker())
    connection = await aio_pika.connect(toy.sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("pathways.events")
        await exchange.publish(
            aio_pika.Message(body=b"\xff not json"), routing_key=ToyHappened.event_type
        )
    await toy.write("after", 1)
    assert await toy.wait_applied(1) == [("after", 1)]
    [dead] = await _dead_letters(toy, 1)
    assert dead.body == b"\xff not json"
    assert dead.headers[ATTEMPTS_HEADER] == 1
    assert "unreadable" in dead.headers[ERROR_HEADER]


async def test_two_relays_keep_each_aggregates_events_in_order(toy: Toy) -> None:
    await toy.start_consumer(toy.broker())
    aggregates = [f"agg-{i}" for i in range(6)]
    for seq in range(40):
        for aggregate in aggregates:
            await toy.write(aggregate, seq)
    toy.start_relay(toy.broker())
    toy.start_relay(toy.broker())
    rows = await toy.wait_applied(240, timeout=30)
    assert len(rows) == 240
    for aggregate in aggregates:
        assert [seq for agg, seq in rows if agg == aggregate] == list(range(40))


async def test_dead_letters_are_redriven_after_a_fix_and_then_applied(toy: Toy) -> None:
    from pathways import dlq

    broken = True

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        if broken:
            raise RuntimeError("bug: cannot apply yet")
        await toy.handle(session, envelope)

    metrics = Metrics(toy.name)
    toy.start_relay(toy.broker())
    await toy.start_consumer(toy.broker(), metrics, handler=handler)
    await toy.write("later", 1)
    for _ in range(200):
        if metrics.events_dead_lettered.labels(ToyHappened.event_type)._value.get():
            break
        await asyncio.sleep(0.05)
    [letter] = await dlq.peek(toy.sandbox.config.amqp_url, toy.name)
    assert letter.routing_key == ToyHappened.event_type and "cannot apply yet" in letter.error
    assert await toy.applied_rows() == []

    broken = False  # the fix is deployed
    assert await dlq.redrive(toy.sandbox.config.amqp_url, toy.name) == 1
    assert await toy.wait_applied(1) == [("later", 1)]
    assert await dlq.peek(toy.sandbox.config.amqp_url, toy.name) == []


async def test_one_failure_in_a_batch_is_handled_alone_and_the_rest_once(toy: Toy) -> None:
    # Declare the queue, then stop consuming so the events pile up into one batch.
    first_broker = toy.broker()
    await toy.start_consumer(first_broker)
    for task in toy.tasks[-2:]:
        task.cancel()
    await first_broker.close()
    for seq in range(10):
        await toy.write("batch", seq, fail_times=1 if seq == 4 else 0)
    toy.start_relay(toy.broker())
    await toy.wait_published(timeout=10)

    metrics = Metrics(toy.name)
    await toy.start_consumer(toy.broker(), metrics)
    rows = await toy.wait_applied(10)
    assert sorted(rows) == [("batch", seq) for seq in range(10)]
    # seq 4 failed inside the batch; the batch was undone, the others handled each in a
    # transaction of its own, and seq 4 (failing only once) went through on its retry.
    assert metrics.events_failed.labels(ToyHappened.event_type)._value.get() == 1
    assert metrics.events_consumed.labels(ToyHappened.event_type, "handled")._value.get() == 10
    assert list(toy.failures.values()) == [1]
    assert metrics.events_dead_lettered.labels(ToyHappened.event_type)._value.get() == 0
