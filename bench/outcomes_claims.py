"""Benchmark: the outcomes service's claims, ledger, statements and audit sample.

What is measured, against the outcomes service running as its own process (uvicorn with
uvloop and httptools, as ``make run`` starts it) in a throw-away sandbox (its own
database, roles and vhost) with the real PostgreSQL and RabbitMQ behind it:

* ``attachments``: ``casework.participant.attached`` events consumed per second, each
  storing the participant and appending (and publishing) its attachment accrual.
* ``claims``: ``POST /v1/outcome-claims`` for participants whose facts are known, each
  decided in its request (rules, decision record, ledger line, two outbox events), at a
  few concurrencies: claims/s and latency.
* ``statement``: ``GET /v1/payments/statement`` for a provider with thousands of lines
  in the month.
* ``audit_sample``: ``GET /v1/outcome-claims/audit-sample`` over thousands of validated
  claims.
* ``expired_waits``: claims whose facts never arrive, decided by the background loop
  once their (shortened) wait is over: claims/s.

Results go to ``bench/results/outcomes_claims.md`` with the machine's description.

    .venv/bin/python -m bench.outcomes_claims            # full run (~1 minute)
    .venv/bin/python -m bench.outcomes_claims --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repo importable
    sys.path.insert(0, str(REPO))

import aio_pika  # noqa: E402
import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench.common import machine  # noqa: E402
from pathways.sandbox import Sandbox  # noqa: E402
from pathways.supervisor import Supervisor  # noqa: E402
from shared.caller import request_target, sign  # noqa: E402
from shared.events.casework import ParticipantAttached  # noqa: E402
from shared.events.envelope import EventPayload, new_envelope  # noqa: E402
from shared.events.gateway import ProgrammeDefined, ProviderArea  # noqa: E402
from shared.outbox import asyncpg_dsn  # noqa: E402

RESULTS = REPO / "bench" / "results" / "outcomes_claims.md"
EXPIRY_WAIT_SECONDS = 1.0
TYPES = ("qualification", "volunteering_start", "education_start")


@dataclass(frozen=True)
class Plan:
    participants: int = 3000
    concurrencies: tuple[int, ...] = (1, 4, 8)
    claims_per_run: int = 600
    reads: int = 30
    expiring_claims: int = 1000


# --- helpers -----------------------------------------------------------------------------


async def _publish(sandbox: Sandbox, payloads: list[EventPayload], producer: str) -> None:
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        for payload in payloads:
            envelope = new_envelope(payload, producer=producer)
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


class Caller(httpx.Auth):
    def __init__(self, secret: str, partner_id: uuid.UUID, kind: str) -> None:
        self.secret, self.partner_id, self.kind = secret, partner_id, kind

    def auth_flow(self, request: httpx.Request):
        target = request_target(request.url.path, request.url.query)
        request.headers.update(
            sign(
                self.secret,
                partner_id=self.partner_id,
                kind=self.kind,
                method=request.method,
                target=target,
            )
        )
        yield request


async def _count(dsn: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _until(
    dsn: str, sql: str, args: tuple, expected: int, timeout: float, *, at_most: bool = False
) -> float:
    """Seconds until ``sql`` counts at least (or at most) ``expected`` rows (polled)."""
    started = time.perf_counter()
    while True:
        count = await _count(dsn, sql, *args)
        if (count <= expected) if at_most else (count >= expected):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"timed out waiting for {expected} rows: {sql}")
        await asyncio.sleep(0.05)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


async def _timed_requests(
    client: httpx.AsyncClient, requests: list[tuple[str, str, dict]], concurrency: int
) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[str, str, dict]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            method, url, kwargs = queue.get_nowait()
            started = time.perf_counter()
            response = await client.request(method, url, **kwargs)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(requests),
        "seconds": elapsed,
        "per_second": len(requests) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": _percentile(latencies, 0.95) * 1000,
    }


# --- the run ---------------------------------------------------------------------------------


async def run(plan: Plan, *, write: bool = True) -> dict[str, Any]:
    box = Sandbox.new("bench")
    await box.create()
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    supervisor = Supervisor(
        box.config,
        ["outcomes"],
        log_dir=log_dir,
        extra_env={
            "outcomes": {
                "OUTCOMES_CLAIM_FACTS_WAIT_SECONDS": str(EXPIRY_WAIT_SECONDS),
                "OUTCOMES_CLAIM_WAIT_POLL_SECONDS": "0.2",
                "PATHWAYS_LOG_LEVEL": "WARNING",
            }
        },
    )
    about = machine()
    results: dict[str, Any] = {}
    dsn = asyncpg_dsn(box.config.database_url("outcomes"))
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=60)
        if not all(ready.values()):
            raise RuntimeError(f"outcomes did not start; see {log_dir}")
        await asyncio.sleep(1)  # the consumer binds its queue once connected
        url = box.config.url("outcomes")
        secret = box.config.internal_secret
        programme = f"bench-{uuid.uuid4().hex[:8]}"
        provider, office = uuid.uuid4(), uuid.uuid4()
        await _publish(
            box,
            [
                ProgrammeDefined(
                    code=programme,
                    name="Bench",
                    eligible_benefits=["ESA"],
                    min_age=18,
                    max_age=66,
                    support_weeks=104,
                    min_job_hours=16,
                    sustainment_weeks=50,
                    providers=[ProviderArea(partner_id=provider, local_authorities=["Wigan"])],
                    tariff={"attachment": 30000, **{t: 5000 for t in TYPES}},
                    targets={},
                )
            ],
            "gateway",
        )
        await _until(dsn, "SELECT count(*) FROM outcomes.programmes", (), 1, 30)

        # Attachments: every participant attached in May 2024 (one big statement).
        participants = [uuid.uuid4() for _ in range(plan.participants)]
        events = [
            ParticipantAttached(
                participant_id=pid,
                referral_id=uuid.uuid4(),
                programme=programme,
                provider_id=provider,
                attached_on=date(2024, 5, 1) + timedelta(days=n % 28),
            )
            for n, pid in enumerate(participants)
        ]
        started = time.perf_counter()
        await _publish(box, events, "casework")
        await _until(
            dsn,
            "SELECT count(*) FROM outcomes.ledger_lines WHERE kind = 'attachment'",
            (),
            len(events),
            300,
        )
        seconds = time.perf_counter() - started
        results["attachments"] = {
            "events": len(events),
            "seconds": seconds,
            "per_second": len(events) / seconds,
        }
        print(f"attachments: {len(events) / seconds:,.0f}/s", flush=True)

        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with (
            httpx.AsyncClient(
                base_url=url, timeout=60, limits=limits, auth=Caller(secret, provider, "provider")
            ) as as_provider,
            httpx.AsyncClient(
                base_url=url, timeout=60, auth=Caller(secret, office, "programme_office")
            ) as as_office,
        ):
            # Claims decided in their request, one type per participant per run.
            results["claims"] = {}
            pool = iter(participants)
            for concurrency in plan.concurrencies:
                bodies = []
                for n in range(plan.claims_per_run):
                    pid = next(pool, None) or participants[n]
                    bodies.append(
                        (
                            "POST",
                            "/v1/outcome-claims",
                            {
                                "json": {
                                    "participant_id": str(pid),
                                    "type": TYPES[concurrency % len(TYPES)],
                                    "achieved_on": "2024-05-29",
                                    "evidence": [{"kind": "certificate", "reference": f"C-{n}"}],
                                }
                            },
                        )
                    )
                measured = await _timed_requests(as_provider, bodies, concurrency)
                results["claims"][concurrency] = measured
                print(f"claims c={concurrency}: {measured['per_second']:,.0f}/s", flush=True)

            params = {"programme": programme, "period": "2024-05", "provider_id": str(provider)}
            lines = await _count(
                dsn, "SELECT count(*) FROM outcomes.ledger_lines WHERE provider_id = $1", provider
            )
            results["statement"] = {
                "lines": lines,
                **await _timed_requests(
                    as_office,
                    [("GET", "/v1/payments/statement", {"params": params})] * plan.reads,
                    1,
                ),
            }
            validated = await _count(
                dsn, "SELECT count(*) FROM outcomes.claims WHERE status = 'validated'"
            )
            sample_params = {"programme": programme, "period": "2024-05", "rate": 0.1}
            results["audit_sample"] = {
                "population": validated,
                **await _timed_requests(
                    as_office,
                    [("GET", "/v1/outcome-claims/audit-sample", {"params": sample_params})]
                    * plan.reads,
                    1,
                ),
            }

            # Claims on participants never heard of: decided when their wait ends.
            strangers = [
                (
                    "POST",
                    "/v1/outcome-claims",
                    {
                        "json": {
                            "participant_id": str(uuid.uuid4()),
                            "type": "qualification",
                            "achieved_on": "2024-05-29",
                            "evidence": [{"kind": "certificate"}],
                        }
                    },
                )
                for _ in range(plan.expiring_claims)
            ]
            posting_started = time.perf_counter()
            await _timed_requests(as_provider, strangers, 8)
            await _until(
                dsn,
                "SELECT count(*) FROM outcomes.claims WHERE status = 'submitted'",
                (),
                0,
                300,
                at_most=True,
            )
            # From the first claim's deadline to the last claim decided.
            drained = time.perf_counter() - posting_started - EXPIRY_WAIT_SECONDS
            results["expired_waits"] = {
                "claims": plan.expiring_claims,
                "seconds_after_first_deadline": drained,
                "per_second": plan.expiring_claims / max(drained, 1e-6),
            }
            print(f"expired waits: {results['expired_waits']['per_second']:,.0f}/s", flush=True)
    finally:
        await supervisor.stop()
        await box.destroy()
    about["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    summary = {"machine": about, "plan": asdict(plan), "results": results}
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report(summary))
    return summary


def report(summary: dict[str, Any]) -> str:
    about, plan, r = summary["machine"], summary["plan"], summary["results"]
    lines = [
        "# Outcomes benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.outcomes_claims`.",
        "",
        "## Machine",
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in about.items()),
        "",
        "The outcomes service ran as one uvicorn process (uvloop, httptools) as `make run`",
        "starts it; PostgreSQL and RabbitMQ on the same machine; the load from this process.",
        f"Plan: {plan}.",
        "",
        "| scenario | size | throughput | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|",
        f"| attachment events consumed (+ accrual) | {r['attachments']['events']:,} "
        f"| {r['attachments']['per_second']:,.0f}/s | | |",
    ]
    for concurrency, m in sorted(r["claims"].items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| claims decided in request, concurrency {concurrency} | {m['requests']:,} "
            f"| {m['per_second']:,.0f}/s | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} |"
        )
    s, a, e = r["statement"], r["audit_sample"], r["expired_waits"]
    lines += [
        f"| statement ({s['lines']:,} lines) | {s['requests']} reads | "
        f"{s['per_second']:,.1f}/s | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} |",
        f"| audit sample (population {a['population']:,}) | {a['requests']} reads | "
        f"{a['per_second']:,.1f}/s | {a['p50_ms']:.1f} | {a['p95_ms']:.1f} |",
        f"| claims decided after their wait for facts | {e['claims']:,} | "
        f"{e['per_second']:,.0f}/s | | |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    plan = (
        Plan(participants=200, concurrencies=(2,), claims_per_run=50, reads=3, expiring_claims=50)
        if args.quick
        else Plan()
    )
    summary = asyncio.run(run(plan, write=not args.no_write))
    print(report(summary))


if __name__ == "__main__":
    main()
