"""How fast reporting takes in events live, and how fast it rebuilds.

    .venv/bin/python -m bench.reporting_events [--participants 2000]

In a throw-away sandbox: builds ``--participants`` hand-style histories (referral
statuses, attachment, claims, ledger lines, assessments: about ten events each),
publishes them on the real broker to the in-process reporting service and times until
every one is handled (live projection: facts + rollup deltas, one event at a time, as
the consumer runs); then times ``rebuild`` over the same event log. Appends the figures
to ``bench/results/reporting_events.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aio_pika
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import machine
from pathways.sandbox import Sandbox
from services.reporting.app import create_app
from services.reporting.rebuild import rebuild
from services.reporting.settings import ReportingSettings
from services.reporting.store.tables import event_log
from shared.events.envelope import Envelope, new_envelope
from shared.settings import PlatformSettings
from tests.reporting.story import Story

RESULTS = Path(__file__).resolve().parent / "results" / "reporting_events.md"


def histories(participants: int) -> Story:
    story = Story().define()
    north = story.providers["Wigan"]
    day0 = date(2023, 1, 1)
    for i in range(participants):
        referred = day0 + timedelta(days=i % 700)
        referral = story.referral(
            referred.isoformat(), statuses=("received", "accepted", "attached")
        )
        attached = (referred + timedelta(days=7)).isoformat()
        p = story.attach(referral, attached)
        story.assessment(p, "initial", attached, {"mental_health": 5, "debt": 3}, north)
        if i % 4 == 0:
            start = (referred + timedelta(days=90)).isoformat()
            story.claim(p, "job_start", start, north)
        if i % 2 == 0:
            review = (referred + timedelta(days=190)).isoformat()
            story.assessment(p, "review", review, {"mental_health": 3}, north)
        if i % 10 == 0:
            story.referral(referred.isoformat(), statuses=("received", "rejected"))
    return story


async def write_event_log(engine: AsyncEngine, envelopes: list[Envelope]) -> None:
    """Log envelopes as the consumer does (``projector.log_event``), many per statement."""
    statement = pg_insert(event_log).on_conflict_do_nothing(index_elements=["event_id"])
    async with engine.begin() as conn:
        for first in range(0, len(envelopes), 1000):
            await conn.execute(
                statement,
                [
                    {
                        "event_id": e.event_id,
                        "event_type": e.type,
                        "version": e.version,
                        "occurred_at": e.occurred_at,
                        "envelope": e.model_dump(mode="json"),
                    }
                    for e in envelopes[first : first + 1000]
                ],
            )


async def rebuild_rates(database_url: str, participants: int, runs: int) -> dict:
    """Add ``participants`` histories to the reporting event log at ``database_url``, then
    rebuild ``runs`` times; each run's events/s (the whole log is replayed each time)."""
    story = histories(participants)
    envelopes = [new_envelope(p, producer="bench") for p in story.events]
    engine = create_async_engine(database_url, pool_size=2)
    try:
        await write_event_log(engine, envelopes)
        measured = []
        for _ in range(runs):
            t, cpu = time.perf_counter(), time.process_time()
            result = await rebuild(engine)
            seconds = time.perf_counter() - t
            measured.append(
                {
                    "events": result.events_replayed,
                    "participants": result.participants,
                    "seconds": seconds,
                    # The rebuild runs in this process: its Python CPU, the rest is
                    # waiting for PostgreSQL (or for a core).
                    "python_cpu_seconds": time.process_time() - cpu,
                    "per_second": result.events_replayed / seconds,
                }
            )
    finally:
        await engine.dispose()
    return {"events_added": len(envelopes), "participants_added": participants, "runs": measured}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=2000)
    args = parser.parse_args()
    sandbox = Sandbox.new("bench")
    await sandbox.create()
    try:
        settings = ReportingSettings(
            database_url=sandbox.config.database_url("reporting"),
            platform=PlatformSettings(
                amqp_url=sandbox.config.amqp_url,
                internal_secret=sandbox.config.internal_secret,
                log_level="WARNING",
            ),
        )
        story = histories(args.participants)
        envelopes = [new_envelope(p, producer="bench") for p in story.events]
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=60):
            runtime = app.state.runtime
            await asyncio.wait_for(runtime.consumer.ready.wait(), 30)
            connection = await aio_pika.connect(sandbox.config.amqp_url)
            started = time.perf_counter()
            async with connection:
                channel = await connection.channel(publisher_confirms=False)
                exchange = await channel.get_exchange("pathways.events")
                for envelope in envelopes:
                    await exchange.publish(
                        aio_pika.Message(
                            body=envelope.to_bytes(),
                            message_id=str(envelope.event_id),
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=envelope.type,
                    )
            published = time.perf_counter() - started
            while True:
                async with runtime.engine.connect() as conn:
                    handled = (
                        await conn.execute(select(func.count()).select_from(event_log))
                    ).scalar_one()
                if handled >= len(envelopes):
                    break
                await asyncio.sleep(0.1)
            live = time.perf_counter() - started
            t = time.perf_counter()
            result = await rebuild(runtime.engine)
            rebuilt = time.perf_counter() - t
        about = machine()
        lines = [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {about['cpu']} x {about['cores']}, "
            f"{about['memory']}, PostgreSQL {about['postgresql']}, "
            f"load average at end {about['load_average_at_start']}\n\n",
            f"- {len(envelopes):,} events for {args.participants:,} participants "
            f"(published in {published:.1f}s)\n",
            f"- live projection: all handled {live:.1f}s after the first was published: "
            f"{len(envelopes) / live:,.0f} events/s\n",
            f"- rebuild of the same log: {rebuilt:.1f}s "
            f"({result.events_replayed / rebuilt:,.0f} events/s, "
            f"{result.participants:,} participants summed)\n\n",
        ]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        header = (
            ""
            if RESULTS.exists()
            else (
                "# Reporting: taking in events, and rebuilding\n\n"
                "`python -m bench.reporting_events`; see the script's docstring.\n\n"
            )
        )
        with RESULTS.open("a") as out:
            out.write(header + "".join(lines))
        sys.stderr.write("".join(lines))
    finally:
        await sandbox.destroy()


if __name__ == "__main__":
    asyncio.run(main())
