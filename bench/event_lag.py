"""Event lag: from a referral's ``201`` to its being counted in the performance report.

Method (written into RESULTS.md by the orchestrator):

* wrk keeps intake going through the gateway at a set pace (its own process).
* Beside it, this probe posts one referral of its own every ``PROBE_INTERVAL`` seconds,
  in turn in each of the fifty ``Probe NN`` local authorities (covered by the bench
  provider, so the probes are accepted like the load), and notes when its ``201`` came.
* A poller asks the gateway for ``GET /v1/reports/performance?group_by=local_authority``
  as the programme office every ``POLL_INTERVAL`` seconds. A probe is visible when its
  authority's ``referrals`` reaches the number of probes posted there so far; its lag
  is from its ``201`` to the end of the first poll that showed it (an upper bound: the
  poll's own time and up to one poll interval are included).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import httpx

from bench.common import WrkRun, percentile, run_wrk
from bench.harness import PROBE_AREAS, Bench
from pathways.bootstrap import SERVICES
from tests.support.builders import referral_body

PROBE_INTERVAL = 0.1
POLL_INTERVAL = 0.05
PACED_CONNECTIONS = 16
# Latency a paced request is expected to take, subtracted from its connection's cycle.
PACED_LATENCY_MS = 30.0
# A probe not visible this long after its 201 is given up on (and reported as such).
GIVE_UP_SECONDS = 15.0


@dataclass
class ProbeState:
    """Probes posted per authority over the whole benchmark (runs share the programme)."""

    posted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PROBE_AREAS, 0))
    serial: int = 0


# How often the sampler counts the events waiting, by place, during a run.
SAMPLE_INTERVAL = 0.25


@dataclass
class LagRun:
    lags_ms: list[float]
    unseen: int
    paced: WrkRun
    target_per_second: float
    # The most events seen waiting at once in each place ("outbox:referrals",
    # "queue:reporting", ...) during the run: where the lag was spent.
    most_waiting: dict[str, int] = field(default_factory=dict)

    @property
    def p50_ms(self) -> float:
        return percentile(self.lags_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.lags_ms, 99)

    def as_dict(self) -> dict[str, Any]:
        return {
            "probes": len(self.lags_ms) + self.unseen,
            "unseen": self.unseen,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_ms": max(self.lags_ms, default=float("nan")),
            "paced_per_second": self.paced.per_second,
            "target_per_second": self.target_per_second,
            "paced_p50_ms": self.paced.p50_ms,
            "most_waiting": self.most_waiting,
        }


async def measure(
    bench: Bench,
    *,
    state: ProbeState,
    target_per_second: float,
    seconds: float,
    run_tag: str,
    serial_base: int,
) -> LagRun:
    # Each paced connection sends, waits for the answer, then waits pace_ms: the rate is
    # a little under connections / pace (by the latency), reported as measured.
    # The probe's own referrals are part of the intake: wrk makes up the rest.
    wrk_rate = max(1.0, target_per_second - 1 / PROBE_INTERVAL)
    pace_ms = max(1.0, PACED_CONNECTIONS * 1000 / wrk_rate - PACED_LATENCY_MS)
    load = asyncio.create_task(
        run_wrk(
            bench.gateway_url,
            programme=bench.programme,
            run_tag=run_tag,
            api_key=bench.referrer.api_key,
            seconds=seconds,
            connections=PACED_CONNECTIONS,
            pace_ms=pace_ms,
            serial_base=serial_base,
        )
    )
    pending: dict[int, tuple[str, int, float]] = {}  # probe -> (area, count wanted, 201 at)
    lags: list[float] = []
    unseen = 0
    posting_done = asyncio.Event()

    async def post_probes(client: httpx.AsyncClient) -> None:
        next_at = time.perf_counter()
        while not load.done():
            state.serial += 1
            area = PROBE_AREAS[state.serial % len(PROBE_AREAS)]
            body = referral_body(
                bench.programme,
                external_ref=f"probe-{run_tag}-{state.serial}",
                person={"local_authority": area},
            )
            response = await client.post("/v1/referrals", json=body)
            for attempt in range(5):
                # A 5xx may or may not have stored it: post the same body again (by its
                # external_ref a retry is answered, never stored twice) until it answers,
                # so each probe adds exactly one to its authority's count.
                if response.status_code < 500:
                    break
                await asyncio.sleep(0.1 * 2**attempt)
                response = await client.post("/v1/referrals", json=body)
            answered = time.perf_counter()
            if response.status_code not in (200, 201):
                raise RuntimeError(f"probe: {response.status_code} {response.text[:300]}")
            state.posted[area] += 1
            bench.referrals_sent += 1
            pending[state.serial] = (area, state.posted[area], answered)
            next_at += PROBE_INTERVAL
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        posting_done.set()

    async def poll(client: httpx.AsyncClient) -> None:
        nonlocal unseen
        params = {"programme": bench.programme, "group_by": "local_authority"}
        while not (posting_done.is_set() and not pending):
            response = await client.get("/v1/reports/performance", params=params)
            seen_at = time.perf_counter()
            if response.status_code >= 500:  # a moment's trouble: poll again
                await asyncio.sleep(POLL_INTERVAL)
                continue
            if response.status_code != 200:
                raise RuntimeError(f"report: {response.status_code} {response.text[:300]}")
            counts = {row["key"]: row["referrals"] or 0 for row in response.json()["rows"]}
            for probe, (area, wanted, answered) in list(pending.items()):
                if counts.get(area, 0) >= wanted:
                    lags.append((seen_at - answered) * 1000)
                    del pending[probe]
                elif posting_done.is_set() and seen_at - answered > GIVE_UP_SECONDS:
                    del pending[probe]
                    unseen += 1
            await asyncio.sleep(POLL_INTERVAL)

    most_waiting: dict[str, int] = {}

    async def sample(waiting: Waiting) -> None:
        while True:
            for place, count in (await waiting.by_place()).items():
                most_waiting[place] = max(most_waiting.get(place, 0), count)
            await asyncio.sleep(SAMPLE_INTERVAL)

    async with (
        Waiting.open(bench) as waiting,
        bench.referrer.client() as referrer,
        bench.office.client() as office,
    ):
        poller = asyncio.create_task(poll(office))
        sampler = asyncio.create_task(sample(waiting))
        try:
            await post_probes(referrer)
            paced = await load
            await poller
        finally:
            for task in (poller, load, sampler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    bench.referrals_sent += paced.requests - paced.non_2xx
    return LagRun(lags, unseen, paced, target_per_second, most_waiting)


class Waiting:
    """Counts events not yet handled, by place: outbox rows not yet published, and
    messages waiting in the services' queues (not those a consumer holds unacknowledged)."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractConnection,
        channel: aio_pika.abc.AbstractChannel,
        conn: asyncpg.Connection,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, bench: Bench) -> AsyncIterator[Waiting]:
        config = bench.platform.config
        connection = await aio_pika.connect(config.amqp_url)
        conn = await asyncpg.connect(f"{config.admin_dsn.rsplit('/', 1)[0]}/{config.database}")
        try:
            async with connection:
                yield cls(connection, await connection.channel(), conn)
        finally:
            await conn.close()

    async def by_place(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for service in SERVICES:
            try:
                queue = await self._channel.declare_queue(f"pathways.{service}", passive=True)
                counts[f"queue:{service}"] = queue.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                # No such queue (not a consumer): the broker closed the channel.
                self._channel = await self._connection.channel()
        for service in SERVICES:
            if await self._conn.fetchval("SELECT to_regclass($1)", f"{service}.outbox"):
                counts[f"outbox:{service}"] = await self._conn.fetchval(
                    f'SELECT count(*) FROM "{service}".outbox WHERE published_at IS NULL'
                )
        return counts


def _in_queues(vhost: str) -> int:
    """Messages in the vhost's service queues, delivered-but-unacknowledged included."""
    executable = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listed = subprocess.run(
        [executable, "-q", "list_queues", "-p", vhost, "name", "messages"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    total = 0
    for line in listed.splitlines():
        name, _, count = line.partition("\t")
        # Main queues only: retry queues hold messages on purpose, for a while.
        if name.count(".") == 1 and name.startswith("pathways.") and count.strip().isdigit():
            total += int(count)
    return total


async def drain(bench: Bench, timeout: float = 300.0) -> float:
    """Wait until the performance report counts every referral answered so far and no
    event is waiting anywhere (twice in a row); the seconds it took."""
    started = time.perf_counter()
    params = {"programme": bench.programme}
    quiet = 0
    async with Waiting.open(bench) as places, bench.office.client() as office:
        while True:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the platform did not settle within {timeout:.0f}s")
            response = await office.get("/v1/reports/performance", params=params)
            if response.status_code >= 500:
                await asyncio.sleep(0.5)
                continue
            if response.status_code != 200:
                raise RuntimeError(f"report: {response.status_code} {response.text[:300]}")
            counted = response.json()["rows"][0]["referrals"] or 0
            waiting = sum((await places.by_place()).values())
            quiet = quiet + 1 if counted >= bench.referrals_sent and waiting == 0 else 0
            # Passive declares count only messages not yet delivered; a consumer may
            # still hold up to its prefetch. rabbitmqctl counts those too (it is slow, so
            # it is asked only once everything else is settled).
            if (
                quiet >= 2
                and await asyncio.to_thread(_in_queues, bench.platform.sandbox.vhost) == 0
            ):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise RuntimeError(
                    f"after {timeout:.0f}s the report counts {counted} referrals of "
                    f"{bench.referrals_sent}, and {waiting} events wait"
                )
            await asyncio.sleep(0.2)
