"""Scaling out: two replicas of one service share its queue and its outbox safely.

Two processes of the referrals service (a consumer of ``gateway.programme.defined``)
are started the way the image starts them (deploy/docker/entrypoint.sh, uvicorn), in a
sandbox of their own, configured as in Kubernetes: quorum queues, production mode, and
a RabbitMQ user holding exactly the permissions of the ``Permission`` in deploy/k8s.

* Competing consumers: a stream of events is split between the replicas and each is
  applied exactly once (the inbox absorbs redeliveries, also after a replica is killed).
* Outbox relay: both replicas relay the same outbox; every row is published once and a
  given aggregate's events leave in the order they were written.
* Dead-lettering works under the Kubernetes permissions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aio_pika
import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from pathways.sandbox import PREFIX, STALE_AFTER_SECONDS, Sandbox, free_port
from services.referrals import store as referrals_store
from shared.broker import QueueNames
from shared.db import create_engine, create_session_factory
from shared.events.envelope import Envelope, EventPayload, new_envelope
from shared.events.gateway import ProgrammeDefined, ProviderArea
from shared.outbox import Outbox
from tests.deploy.kustomize import render
from tests.support.builders import programme_body

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "docker" / "entrypoint.sh"
LOGS = REPO / "tests" / "artifacts" / "replicas"
SERVICE = "referrals"
EVENT = ProgrammeDefined.event_type
STALE_USER = re.compile(rf"^{PREFIX}(\d{{10}})_[0-9a-f]{{6}}_rep_app$")

pytestmark = pytest.mark.timeout(240)


class ReplicaProbe(EventPayload):
    """An event written straight into the referrals outbox to watch the relays."""

    event_type = "referrals.replica_probe.recorded"

    aggregate: str
    seq: int


def sweep_stale_users() -> None:
    """Remove broker users left by runs that were killed before their teardown."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    for line in rabbitmqctl("list_users").splitlines():
        match = STALE_USER.match(line.split("\t")[0])
        if match and int(match.group(1)) < cutoff:
            with contextlib.suppress(subprocess.SubprocessError):
                rabbitmqctl("delete_user", match.group(0))


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return result.stdout


@dataclass
class Replica:
    name: str
    port: int
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / f"{self.name}.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "sh",
                str(ENTRYPOINT),
                SERVICE,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process is not None and self.process.returncode is None, (
                    f"{self.name} exited; see {LOGS / (self.name + '.log')}"
                )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/ready")).status_code == 200:
                        return
                assert loop.time() < deadline, f"{self.name} not ready; see its log in {LOGS}"
                await asyncio.sleep(0.2)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    async def metric(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


@dataclass
class Deployment:
    sandbox: Sandbox
    replicas: list[Replica]
    app_user: str

    @property
    def queues(self) -> QueueNames:
        return QueueNames(SERVICE)

    async def consumer_count(self) -> int:
        connection = await aio_pika.connect(self.sandbox.config.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.queues.main, passive=True)
            return queue.declaration_result.consumer_count

    async def queue_depth(self, name: str) -> int:
        connection = await aio_pika.connect(self.sandbox.config.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            return queue.declaration_result.message_count

    async def publish(self, envelopes: list[Envelope]) -> None:
        connection = await aio_pika.connect(self.sandbox.config.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
            )
            for envelope in envelopes:
                await exchange.publish(
                    aio_pika.Message(
                        body=envelope.to_bytes(),
                        message_id=str(envelope.event_id),
                        type=envelope.type,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=envelope.type,
                )

    def engine(self):
        # The service's own role, in its own schema: what it can see is what it applied.
        return create_engine(self.sandbox.config.database_url(SERVICE), schema=SERVICE, pool_size=2)

    async def applied(self, codes: list[str]) -> int:
        engine = self.engine()
        try:
            async with engine.connect() as conn:
                table = referrals_store.programmes
                query = select(func.count()).select_from(table).where(table.c.code.in_(codes))
                return (await conn.execute(query)).scalar_one()
        finally:
            await engine.dispose()

    async def in_inbox(self, event_ids: list[uuid.UUID]) -> int:
        engine = self.engine()
        try:
            async with engine.connect() as conn:
                table = referrals_store.inbox
                query = (
                    select(func.count()).select_from(table).where(table.c.event_id.in_(event_ids))
                )
                return (await conn.execute(query)).scalar_one()
        finally:
            await engine.dispose()

    async def handled(self, outcome: str) -> list[float]:
        return [
            await r.metric("events_consumed_total", type=EVENT, outcome=outcome)
            for r in self.replicas
        ]


def kubernetes_permissions() -> dict[str, str]:
    """The RabbitMQ permissions the production overlay grants the services."""
    (permission,) = [
        o
        for o in render(REPO / "deploy" / "k8s" / "overlays" / "production")
        if o["kind"] == "Permission"
    ]
    return permission["spec"]["permissions"]


@pytest_asyncio.fixture(scope="module")
async def deployment() -> AsyncIterator[Deployment]:
    sandbox = Sandbox.new("rep")
    await sandbox.create()
    app_user = f"{sandbox.name}_app"
    password = secrets.token_hex(16)
    permissions = kubernetes_permissions()
    await asyncio.to_thread(sweep_stale_users)
    try:
        await asyncio.to_thread(rabbitmqctl, "add_user", app_user, password)
        await asyncio.to_thread(
            rabbitmqctl,
            "set_permissions",
            "-p",
            sandbox.vhost,
            app_user,
            permissions["configure"],
            permissions["write"],
            permissions["read"],
        )
        amqp_url = f"amqp://{app_user}:{password}@127.0.0.1:5672/{quote(sandbox.vhost, safe='')}"
        replicas = []
        for index in (1, 2):
            port = free_port()
            env = {
                "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                **sandbox.config.service_env(SERVICE),
                # As deploy/k8s/base/platform-config.yaml sets them:
                "PATHWAYS_ENVIRONMENT": "production",
                "PATHWAYS_QUEUE_TYPE": "quorum",
                "PATHWAYS_AMQP_URL": amqp_url,
                "PATHWAYS_RETRY_DELAYS_MS": "[50, 100, 200]",
                "PATHWAYS_OUTBOX_POLL_SECONDS": "0.1",
                "REFERRALS_HOST": "127.0.0.1",
                "REFERRALS_PORT": str(port),
            }
            replicas.append(Replica(f"{SERVICE}-{index}", port, env))
        for replica in replicas:
            await replica.start()
        for replica in replicas:
            await replica.wait_ready()
        yield Deployment(sandbox, replicas, app_user)
    finally:
        for replica in locals().get("replicas", []):
            await replica.stop()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            await asyncio.to_thread(rabbitmqctl, "delete_user", app_user)
        if not os.environ.get("PATHWAYS_KEEP_SANDBOX"):
            await sandbox.destroy()


async def eventually(check, timeout: float = 60, interval: float = 0.1):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result is not None and result is not False:
            return result
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(interval)


def programmes(count: int) -> tuple[list[str], list[Envelope]]:
    tag = secrets.token_hex(3).upper()
    provider = [ProviderArea(partner_id=uuid.uuid4(), local_authorities=["Wigan"])]
    codes = [f"REP{tag}{i:04d}" for i in range(count)]
    envelopes = [
        new_envelope(
            ProgrammeDefined(**programme_body(code, providers=provider)), producer="gateway"
        )
        for code in codes
    ]
    return codes, envelopes


async def both_consuming(deployment: Deployment) -> None:
    await eventually(lambda: _equals(deployment.consumer_count(), 2), timeout=60)


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def _some(awaitable) -> int | None:
    """The count once it is above zero (``eventually`` takes 0 as an answer)."""
    count = await awaitable
    return count if count > 0 else None


# --- competing consumers -----------------------------------------------------------------


async def test_the_queue_is_a_quorum_queue_shared_by_both_replicas(deployment: Deployment) -> None:
    await both_consuming(deployment)
    listing = await asyncio.to_thread(
        rabbitmqctl, "list_queues", "-p", deployment.sandbox.vhost, "name", "type"
    )
    types = dict(line.split() for line in listing.splitlines() if line.strip())
    assert types[deployment.queues.main] == "quorum"
    assert types[deployment.queues.dead_letter] == "quorum"


async def test_two_replicas_split_the_stream_and_apply_each_event_once(
    deployment: Deployment,
) -> None:
    await both_consuming(deployment)
    handled_before = await deployment.handled("handled")
    duplicates_before = await deployment.handled("duplicate")
    codes, envelopes = programmes(240)
    redelivered = envelopes[:30]  # the broker may deliver any event twice
    await deployment.publish(envelopes + redelivered)

    await eventually(lambda: _equals(deployment.applied(codes), len(codes)))
    wanted = len(envelopes) + len(redelivered)

    async def all_counted() -> bool:
        handled = sum(await deployment.handled("handled")) - sum(handled_before)
        duplicates = sum(await deployment.handled("duplicate")) - sum(duplicates_before)
        return handled + duplicates >= wanted

    await eventually(all_counted)
    handled = [
        a - b for a, b in zip(await deployment.handled("handled"), handled_before, strict=True)
    ]
    duplicates = sum(await deployment.handled("duplicate")) - sum(duplicates_before)
    # Exactly once: every event applied by one replica or the other, never both.
    assert sum(handled) == len(envelopes), handled
    assert duplicates == len(redelivered)
    assert all(count > 0 for count in handled), f"one replica idled: {handled}"
    assert await deployment.applied(codes) == len(codes)
    assert await deployment.in_inbox([e.event_id for e in envelopes]) == len(envelopes)
    assert await deployment.queue_depth(deployment.queues.dead_letter) == 0


async def test_a_replica_killed_mid_stream_loses_and_repeats_nothing(
    deployment: Deployment,
) -> None:
    await both_consuming(deployment)
    victim, survivor = deployment.replicas
    codes, envelopes = programmes(1000)
    # The stream is still being published when the kill lands: consumers batch their
    # work, so a stream published first could be applied in full before any kill.
    publishing = asyncio.create_task(deployment.publish(envelopes))
    applied_at_kill = await eventually(
        lambda: _some(deployment.applied(codes)), timeout=60, interval=0.01
    )
    await victim.stop(signal.SIGKILL)  # no graceful shutdown: unacked work goes back
    assert not publishing.done(), "the kill must land mid-stream"
    assert 0 < applied_at_kill < len(codes)
    await publishing

    await eventually(lambda: _equals(deployment.applied(codes), len(codes)), timeout=120)
    assert await deployment.in_inbox([e.event_id for e in envelopes]) == len(envelopes)
    assert await deployment.queue_depth(deployment.queues.main) == 0

    # Back to two replicas for whatever runs next.
    await victim.start()
    await victim.wait_ready()
    await both_consuming(deployment)
    assert survivor.process is not None and survivor.process.returncode is None


async def test_dead_lettering_works_under_the_kubernetes_permissions(
    deployment: Deployment,
) -> None:
    """A poison event is parked through the default exchange (write on amq.default)."""
    await both_consuming(deployment)
    before = await deployment.queue_depth(deployment.queues.dead_letter)
    _, (envelope,) = programmes(1)
    poison = envelope.model_copy(update={"version": 99})  # a version nobody handles
    await deployment.publish([poison])
    await eventually(
        lambda: _equals(deployment.queue_depth(deployment.queues.dead_letter), before + 1)
    )


# --- the outbox relay ----------------------------------------------------------------------


async def test_two_relays_publish_every_outbox_row_once_and_in_order(
    deployment: Deployment,
) -> None:
    connection = await aio_pika.connect(deployment.sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        probe_queue = await channel.declare_queue(
            f"pathways.test.{secrets.token_hex(4)}", exclusive=True
        )
        await probe_queue.bind(exchange, routing_key=ReplicaProbe.event_type)
        published_before = [
            await r.metric("events_published_total", type=ReplicaProbe.event_type)
            for r in deployment.replicas
        ]

        # 40 aggregates, 10 events each, written in 100 small transactions as the service
        # itself would, interleaved so both relays see rows of every aggregate.
        aggregates = [f"agg-{secrets.token_hex(3)}-{i}" for i in range(40)]
        engine = deployment.engine()
        outbox = Outbox(referrals_store.outbox, producer=SERVICE)
        written: list[Envelope] = []
        try:
            sessions = create_session_factory(engine)
            for batch in range(100):
                async with sessions() as session:
                    for j in range(4):
                        index = batch * 4 + j
                        aggregate = aggregates[index % len(aggregates)]
                        seq = index // len(aggregates)
                        written.append(
                            await outbox.add(
                                session,
                                ReplicaProbe(aggregate=aggregate, seq=seq),
                                aggregate_id=aggregate,
                            )
                        )
                    await session.commit()
        finally:
            await engine.dispose()

        received: list[Envelope] = []
        async with probe_queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    received.append(Envelope.from_bytes(message.body))
                if len(received) == len(written):
                    break
        # Anything extra would be a second publication: give it a moment to show up.
        await asyncio.sleep(1.0)
        extra = await probe_queue.get(fail=False)
        assert extra is None, "an outbox row was published twice"

    ids = Counter(e.event_id for e in received)
    assert set(ids) == {e.event_id for e in written} and max(ids.values()) == 1
    order: dict[str, list[int]] = defaultdict(list)
    for envelope in received:
        order[envelope.payload["aggregate"]].append(envelope.payload["seq"])
    assert all(seqs == sorted(seqs) for seqs in order.values()), "an aggregate's events reordered"
    published = [
        (await r.metric("events_published_total", type=ReplicaProbe.event_type)) - before
        for r, before in zip(deployment.replicas, published_before, strict=True)
    ]
    assert sum(published) == len(written), published
    print(f"relay split between the two replicas: {published}")
