"""Benchmark: sessions synced per second through the casework service.

What is measured: ``POST /v1/sessions/bulk`` with 1,000-session batches against the
casework service running as its own process (uvicorn with uvloop and httptools, as
``make run`` starts it) in a throw-away sandbox (its own database, roles and vhost),
with the real PostgreSQL behind it. The load comes from a separate process that
builds every body before the clock starts, so its own JSON work is not counted.

Scenarios, each at a few concurrencies (batches in flight at once):

* ``create``: every session new (a CRM's first sync).
* ``resync``: a CRM's periodic sync of sessions already sent: half edited (newer
  ``modified_at``), a quarter unchanged, a quarter new.

Each (scenario, concurrency) is run several times; the median run is reported.
Results go to ``bench/results/sessions_sync.md`` with the machine's description.

    .venv/bin/python -m bench.sessions_sync            # full run (~1-2 minutes)
    .venv/bin/python -m bench.sessions_sync --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repo importable
    sys.path.insert(0, str(REPO))

import aio_pika  # noqa: E402
import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.common import load_average, machine  # noqa: E402
from pathways.sandbox import Sandbox  # noqa: E402
from pathways.supervisor import Supervisor  # noqa: E402
from shared.caller import request_target, sign  # noqa: E402
from shared.events.casework import AttachmentRequested  # noqa: E402
from shared.events.envelope import EventPayload, new_envelope  # noqa: E402
from shared.events.referrals import (  # noqa: E402
    AttachmentAnswered,
    Circumstances,
    PersonDetails,
    ReferralAccepted,
)
from tests.support.events import Answerer  # noqa: E402

RESULTS = REPO / "bench" / "results" / "sessions_sync.md"
BATCH = 1000
TARGET_PER_SECOND = 20_000
KINDS = ("one_to_one", "group", "phone", "video", "in_work_support")


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...] = (1, 2, 4)
    batches_per_run: int = 20
    runs: int = 3
    participants: int = 200


# --- the load generator (runs in its own process) -------------------------------------


def _session(external_id: str, participant_id: str, rng: random.Random, edit: int) -> dict:
    occurred = datetime(2024, 3, 1, 9, tzinfo=UTC) + timedelta(minutes=rng.randrange(500_000))
    return {
        "external_id": external_id,
        "participant_id": participant_id,
        "occurred_at": occurred.isoformat(),
        "kind": rng.choice(KINDS),
        "duration_minutes": rng.choice((15, 30, 45, 60)),
        "attendance": rng.choice(("attended", "attended", "did_not_attend", "cancelled")),
        "modified_at": (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=edit)).isoformat(),
        "notes": f"Reviewed job search and CV; next steps agreed (revision {edit}).",
    }


def build_bodies(spec: dict[str, Any]) -> list[bytes]:
    """Every batch of a run, as the bytes a CRM would send."""
    rng = random.Random(spec["seed"])
    participants: list[str] = spec["participants"]
    prefix: str = spec["prefix"]
    bodies = []
    for b in range(spec["batches"]):
        items = []
        for i in range(BATCH):
            pid = participants[(b * BATCH + i) % len(participants)]
            if spec["scenario"] == "create":
                items.append(_session(f"{prefix}-{b}-{i}", pid, rng, edit=0))
            else:
                # Keys of the seeding run (same prefix/batch/index): edited, unchanged, new.
                slot = i % 4
                if slot in (0, 1):
                    items.append(_session(f"{prefix}-{b}-{i}", pid, rng, edit=spec["edit"]))
                elif slot == 2:
                    items.append(spec["unchanged"][b][i] if spec.get("unchanged") else {})
                else:
                    items.append(_session(f"{prefix}-new{spec['edit']}-{b}-{i}", pid, rng, 0))
        bodies.append(orjson.dumps({"sessions": items}))
    return bodies


async def _post_all(spec: dict[str, Any], bodies: list[bytes]) -> dict[str, Any]:
    url, secret, provider = spec["url"], spec.get("secret", ""), spec.get("provider_id", "")
    concurrency: int = spec["concurrency"]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                if spec.get("api_key"):  # through the gateway, as the provider's CRM
                    headers = {"authorization": f"Bearer {spec['api_key']}"}
                else:  # straight to casework, signed as the gateway signs
                    headers = sign(
                        secret,
                        partner_id=provider,
                        kind="provider",
                        method="POST",
                        target=request_target("/v1/sessions/bulk", ""),
                    )
                headers["content-type"] = "application/json"
                started = time.perf_counter()
                response = await client.post("/v1/sessions/bulk", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"sync failed: {response.status_code} {response.text[:300]}")
                for result in orjson.loads(response.content)["results"]:
                    statuses[result["status"]] = statuses.get(result["status"], 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    sessions = len(bodies) * BATCH
    return {
        "sessions": sessions,
        "seconds": elapsed,
        "per_second": sessions / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[math.ceil(len(latencies) * 0.95) - 1] * 1000,
        "statuses": statuses,
    }


def load_generator_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    if spec["scenario"] == "resync":
        # The unchanged quarter must be byte-for-byte what the seeding run sent.
        seed_spec = {**spec, "scenario": "create", "seed": spec["seed_of_create"], "edit": 0}
        seeded = [orjson.loads(b)["sessions"] for b in build_bodies(seed_spec)]
        spec["unchanged"] = seeded
    bodies = build_bodies(spec)
    print(json.dumps(asyncio.run(_post_all(spec, bodies))))


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
        path = handle.name
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.sessions_sync", "--load-generator", path],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    finally:
        os.unlink(path)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the harness ---------------------------------------------------------------------


async def _publish(sandbox: Sandbox, payloads: list[EventPayload]) -> None:
    """Publish events as the referrals service would (with confirms)."""
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            sandbox.config.extra_env.get("PATHWAYS_EXCHANGE", "pathways.events"),
            aio_pika.ExchangeType.TOPIC,
            durable=True,
        )
        for payload in payloads:
            envelope = new_envelope(payload, producer="referrals")
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


async def _seed(sandbox: Sandbox, url: str, provider_id: uuid.UUID, count: int) -> list[str]:
    """Participants of one provider: referrals accepted by event, then attached over HTTP
    (each attachment granted by a stand-in for referrals)."""
    programme = f"bench-{uuid.uuid4().hex[:8]}"
    referral_ids = [uuid.uuid4() for _ in range(count)]
    await _publish(
        sandbox,
        [
            ReferralAccepted(
                referral_id=rid,
                programme=programme,
                provider_id=provider_id,
                source="jcp",
                referred_on=date(2024, 1, 15),
                person=PersonDetails(
                    given_name="Bench",
                    family_name=f"Person {n}",
                    date_of_birth=date(1980, 1, 1),
                    nino=None,
                    postcode="WN1 1AA",
                    local_authority="Wigan",
                    gender=None,
                    disability=None,
                    phone=None,
                ),
                circumstances=Circumstances(
                    benefit="ESA", months_out_of_work=12, criminal_justice=None, treatment=None
                ),
            )
            for n, rid in enumerate(referral_ids)
        ],
    )
    secret = sandbox.config.internal_secret
    participants: list[str] = []
    # Only casework runs here: this plays referrals, granting the attachments it asks for.
    seeded = set(referral_ids)

    def grant(request: EventPayload) -> AttachmentAnswered | None:
        assert isinstance(request, AttachmentRequested)
        if request.referral_id not in seeded:
            return None
        return AttachmentAnswered(
            referral_id=request.referral_id,
            participant_id=request.participant_id,
            granted=True,
            status="attached",
        )

    referrals = Answerer(sandbox, AttachmentRequested.event_type, grant, producer="referrals")
    await referrals.start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for rid in referral_ids:
                headers = sign(
                    secret,
                    partner_id=provider_id,
                    kind="provider",
                    method="POST",
                    target="/v1/participants",
                )
                response = await client.post(
                    "/v1/participants",
                    json={"referral_id": str(rid), "attached_on": "2024-02-01", "key_worker": "kw"},
                    headers=headers,
                )
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"seeding failed: {response.status_code} {response.text}")
                participants.append(response.json()["id"])
    finally:
        await referrals.close()
    return participants


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU used by the casework process and by its PostgreSQL backends during a run:
    the cost per batch, a steadier figure than throughput on a shared machine."""

    service_pid: int
    admin_dsn: str
    database: str

    async def _backends(self) -> dict[int, float]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await conn.close()
        return {r["pid"]: _cpu_seconds(r["pid"]) for r in rows}

    async def snapshot(self) -> tuple[float, dict[int, float]]:
        return _cpu_seconds(self.service_pid), await self._backends()

    async def since(self, before: tuple[float, dict[int, float]]) -> tuple[float, float]:
        service_before, backends_before = before
        service, backends = await self.snapshot()
        database = sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends.items())
        return service - service_before, database


async def run(plan: Plan, *, write: bool = True) -> dict[str, Any]:
    box = Sandbox.new("bench")
    await box.create()
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    supervisor = Supervisor(box.config, ["casework"], log_dir=log_dir)
    about = machine()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {"create": {}, "resync": {}}
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=60)
        if not all(ready.values()):
            raise RuntimeError(f"casework did not start; see {log_dir}")
        url = box.config.url("casework")
        service_pid = supervisor.children["casework"].pid
        assert service_pid is not None
        meter = CpuMeter(service_pid, box.config.admin_dsn, box.config.database)
        provider_id = uuid.uuid4()
        participants = await _seed(box, url, provider_id, plan.participants)
        base = {
            "url": url,
            "secret": box.config.internal_secret,
            "provider_id": str(provider_id),
            "participants": participants,
            "batches": plan.batches_per_run,
        }
        for concurrency in plan.concurrencies:
            for run_no in range(plan.runs):
                prefix = f"c{concurrency}r{run_no}"
                create = {
                    **base,
                    "scenario": "create",
                    "prefix": prefix,
                    "seed": run_no,
                    "edit": 0,
                    "concurrency": concurrency,
                }
                resync = {
                    **create,
                    "scenario": "resync",
                    "edit": 1,
                    "seed": 1000 + run_no,
                    "seed_of_create": run_no,
                }
                for spec in (create, resync):
                    before = await meter.snapshot()
                    outcome = run_load(spec)
                    service_cpu, database_cpu = await meter.since(before)
                    outcome["service_cpu_ms"] = service_cpu * 1000 / plan.batches_per_run
                    outcome["database_cpu_ms"] = database_cpu * 1000 / plan.batches_per_run
                    results[spec["scenario"]].setdefault(concurrency, []).append(outcome)
                print(
                    f"concurrency {concurrency} run {run_no + 1}: "
                    f"create {results['create'][concurrency][-1]['per_second']:,.0f}/s, "
                    f"resync {results['resync'][concurrency][-1]['per_second']:,.0f}/s",
                    flush=True,
                )
    finally:
        await supervisor.stop()
        await box.destroy()
    about["load_average_at_end"] = load_average()
    summary = {"machine": about, "plan": plan.__dict__, "results": results}
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report(summary))
    return summary


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["per_second"])[len(runs) // 2]


def report(summary: dict[str, Any]) -> str:
    about, plan = summary["machine"], summary["plan"]
    lines = [
        "# Sessions sync benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.sessions_sync`.",
        f"Target: at least {TARGET_PER_SECOND:,} sessions/s in {BATCH:,}-session batches.",
        "",
        "## Machine",
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in about.items()),
        "",
        "The casework service ran as one uvicorn process (uvloop, httptools) as `make run`",
        "starts it; PostgreSQL on the same machine; the load generator in its own process,",
        "bodies built before timing. "
        f"{plan['runs']} runs of {plan['batches_per_run']} batches per row; the median run "
        "is shown.",
        "",
        "CPU per batch is what the casework process and its PostgreSQL backends used",
        "(from /proc), divided by the batches sent. It depends less on other load than",
        "throughput does (though shared cores inflate it too): with one service process,",
        "1000 / service CPU ms is roughly the batches per second it can take.",
        "",
        "| scenario | concurrency | sessions/s (median run) | all runs | p50 batch ms "
        "| p95 batch ms | service CPU ms/batch | PostgreSQL CPU ms/batch | statuses |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for scenario, by_concurrency in summary["results"].items():
        for concurrency, runs in sorted(by_concurrency.items(), key=lambda kv: int(kv[0])):
            m = median_run(runs)
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(m["statuses"].items()))
            every = " / ".join(f"{r['per_second']:,.0f}" for r in runs)
            lines.append(
                f"| {scenario} | {concurrency} | {m['per_second']:,.0f} | {every} "
                f"| {m['p50_ms']:.0f} | {m['p95_ms']:.0f} | {m['service_cpu_ms']:.1f} "
                f"| {m['database_cpu_ms']:.1f} | {statuses} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_generator:
        load_generator_main(args.load_generator)
        return
    plan = (
        Plan(concurrencies=(2,), batches_per_run=2, runs=1, participants=20)
        if args.quick
        else Plan()
    )
    summary = asyncio.run(run(plan, write=not args.no_write))
    print(report(summary))


if __name__ == "__main__":
    main()
