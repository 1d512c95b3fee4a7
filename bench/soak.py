"""``make soak``: a bounded soak of the whole platform under steady mixed traffic.

    .venv/bin/python -m bench.soak                 # five minutes
    SOAK_SECONDS=60 .venv/bin/python -m bench.soak # a short check
    SOAK_RATE=20                                   # requests a second (default 20)

The platform is started exactly as ``make run`` starts it (every service its own
process behind the gateway, in a sandbox of its own). A loopback load generator then
sends, at a steady rate, the traffic partners send: referrals, attachments with a job,
key-worker session syncs, outcome claims and report reads. Every few seconds it samples
each service's resident memory (VmRSS from /proc). Afterwards it waits for every outbox
and every queue to drain, and checks:

* no errors: every request got the answer the contract promises it;
* memory does not keep growing: after warm-up, no service grows by more than
  ``SOAK_RSS_GROWTH_MB`` (default 30 MB);
* the outboxes (unpublished rows) and the RabbitMQ queues drain to zero.

Figures go to ``bench/results/soak.md``; the exit status is 1 if a check failed.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import machine, percentile
from pathways.bootstrap import SERVICES
from tests.support.builders import employment_body, job_start_claim_body, referral_body
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform, start_platform

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "soak.md"
SAMPLE_EVERY = 5.0
# Share of the traffic by kind; an operation with nothing to act on yet reads a report.
MIX = {"referral": 30, "attach": 15, "sessions": 20, "claim": 10, "report": 25}
SESSIONS_PER_SYNC = 10


@dataclass
class Load:
    referrer: Partner
    provider: Partner
    office: Partner
    programme: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    referred: collections.deque[str] = field(default_factory=collections.deque)
    participants: list[str] = field(default_factory=list)
    to_claim: collections.deque[tuple[str, str]] = field(default_factory=collections.deque)
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    session_seq: int = 0

    async def call(
        self, kind: str, who: str, method: str, url: str, ok: tuple[int, ...], **kw: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.clients[who].request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.errors.append(f"{kind} {method} {url}: {type(exc).__name__}")
            return None
        self.latencies[kind].append(time.perf_counter() - started)
        self.counts[kind] += 1
        if response.status_code not in ok:
            self.errors.append(
                f"{kind} {method} {url}: {response.status_code} {response.text[:200]}"
            )
            return None
        return response

    async def referral(self) -> None:
        response = await self.call(
            "referral",
            "referrer",
            "POST",
            "/v1/referrals",
            (201,),
            json=referral_body(self.programme),
        )
        if response is not None:
            self.referred.append(response.json()["id"])

    async def attach(self) -> None:
        if not self.referred:
            return await self.report()
        referral_id = self.referred.popleft()
        seen = await self.call("attach", "provider", "GET", f"/v1/referrals/{referral_id}", (200,))
        if seen is None:
            return None
        if seen.json()["status"] != "accepted":  # not decided yet: try again later
            self.referred.append(referral_id)
            return None
        attached = await self.call(
            "attach",
            "provider",
            "POST",
            "/v1/participants",
            (201,),
            json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw-1"},
        )
        if attached is None:
            return None
        participant_id = attached.json()["id"]
        job = await self.call(
            "attach",
            "provider",
            "POST",
            f"/v1/participants/{participant_id}/employment",
            (201,),
            json=employment_body(),
        )
        self.participants.append(participant_id)
        if job is not None:
            self.to_claim.append((participant_id, job.json()["id"]))
        return None

    async def sessions(self) -> None:
        if not self.participants:
            return await self.report()
        participant_id = random.choice(self.participants)
        items = []
        for _ in range(SESSIONS_PER_SYNC):
            self.session_seq += 1
            items.append(
                {
                    "external_id": f"soak-{self.session_seq}",
                    "participant_id": participant_id,
                    "occurred_at": "2024-03-01T10:00:00+00:00",
                    "kind": "one_to_one",
                    "duration_minutes": 45,
                    "attendance": "attended",
                    "modified_at": "2024-03-01T12:00:00+00:00",
                }
            )
        response = await self.call(
            "sessions", "provider", "POST", "/v1/sessions/bulk", (200,), json={"sessions": items}
        )
        if response is not None:
            statuses = {r["status"] for r in response.json()["results"]}
            if statuses != {"created"}:
                self.errors.append(f"sessions: {statuses}")
        return None

    async def claim(self) -> None:
        if not self.to_claim:
            return await self.report()
        participant_id, episode_id = self.to_claim.popleft()
        response = await self.call(
            "claim",
            "provider",
            "POST",
            "/v1/outcome-claims",
            (201,),
            json=job_start_claim_body(participant_id, episode_id),
        )
        if response is not None and response.json()["status"] == "rejected":
            self.errors.append(f"claim rejected: {response.json()['reasons']}")
        return None

    async def report(self) -> None:
        path = random.choice(["/v1/reports/performance", "/v1/reports/cohorts"])
        await self.call(
            "report", "office", "GET", path, (200,), params={"programme": self.programme}
        )


def rss_kb(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def sample_memory(
    platform: RunningPlatform, samples: dict[str, list[tuple[float, int]]], start: float
) -> None:
    while True:
        for service, child in platform.supervisor.children.items():
            if (kb := rss_kb(child.pid)) is not None:
                samples[service].append((time.monotonic() - start, kb))
        await asyncio.sleep(SAMPLE_EVERY)


async def unpublished(platform: RunningPlatform) -> int:
    config = platform.config
    conn = await asyncpg.connect(config.admin_dsn, database=config.database)
    try:
        return sum(
            [
                await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL")
                for s in SERVICES
            ]
        )
    finally:
        await conn.close()


def queue_depths(vhost: str) -> dict[str, int]:
    executable = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run(
        [executable, "-q", "list_queues", "-p", vhost, "name", "messages"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    depths = {}
    for line in out.splitlines():
        name, _, count = line.partition("\t")
        if count.strip().isdigit():
            depths[name] = int(count)
    return depths


async def drain(platform: RunningPlatform, timeout: float = 120) -> tuple[float, int, dict]:
    """Wait until no outbox row is unpublished and every queue is empty."""
    started = time.monotonic()
    while True:
        backlog = await unpublished(platform)
        queues = await asyncio.to_thread(queue_depths, platform.sandbox.vhost)
        busy = {q: n for q, n in queues.items() if n}
        if (backlog == 0 and not busy) or time.monotonic() - started > timeout:
            return time.monotonic() - started, backlog, busy
        await asyncio.sleep(1)


async def run(seconds: float, rate: float, growth_mb: float) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-soak-"))
    the_machine = machine()
    started_at = datetime.now(UTC)
    async with start_platform(log_dir, label="soak") as platform:
        gateway = Gateway(platform.gateway_url, platform.admin_token)
        referrer = await gateway.create_partner("jcp")
        provider = await gateway.create_partner("provider")
        office = await gateway.create_partner("programme_office")
        programme = (await gateway.define_programme({provider: ["Wigan"]}))["code"]
        load = Load(referrer, provider, office, programme)
        for name, partner in (("referrer", referrer), ("provider", provider), ("office", office)):
            load.clients[name] = partner.client(timeout=30)
        operations = {kind: getattr(load, kind) for kind in MIX}
        weights = list(MIX.values())
        samples: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
        start = time.monotonic()
        sampler = asyncio.create_task(sample_memory(platform, samples, start))
        tasks: set[asyncio.Task[None]] = set()
        sent = 0
        print(f"soak: {seconds:.0f} s at {rate:g} requests/s; logs in {log_dir}", flush=True)
        # A steady, open-loop rate: the n-th operation starts at n / rate seconds,
        # whether or not earlier ones have finished (as independent partners would).
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                kind = random.choices(list(MIX), weights)[0]
                task = asyncio.create_task(operations[kind]())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, sent / rate - (time.monotonic() - start)))
        if tasks:
            await asyncio.wait(tasks, timeout=60)
        load_seconds = time.monotonic() - start
        drain_seconds, backlog, busy = await drain(platform)
        await asyncio.sleep(SAMPLE_EVERY)  # one more memory sample after the drain
        sampler.cancel()
        restarts = {s: c.restarts for s, c in platform.supervisor.children.items()}
        for client in load.clients.values():
            await client.aclose()
        await gateway.aclose()

    warm_up = min(60.0, seconds * 0.25)
    memory = {}
    failures: list[str] = []
    for service in SERVICES:
        points = samples[service]
        after = [kb for t, kb in points if t >= warm_up] or [kb for _, kb in points]
        row = {
            "start": points[0][1] / 1024 if points else float("nan"),
            "warm": after[0] / 1024,
            "end": after[-1] / 1024,
            "max": max(kb for _, kb in points) / 1024,
        }
        row["growth"] = row["end"] - row["warm"]
        memory[service] = row
        if row["growth"] > growth_mb:
            failures.append(f"{service} grew {row['growth']:.1f} MB after warm-up")
    if load.errors:
        failures.append(f"{len(load.errors)} errors")
    if backlog or busy:
        failures.append(f"not drained: {backlog} outbox rows, queues {busy}")
    if any(restarts.values()):
        failures.append(f"services restarted: {restarts}")

    total = sum(load.counts.values())
    lines = [
        "# Soak",
        "",
        f"`make soak` (bench/soak.py), {started_at:%Y-%m-%d %H:%M} UTC. "
        f"Result: **{'PASS' if not failures else 'FAIL'}**"
        + (f" ({'; '.join(failures)})" if failures else ""),
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in the_machine.items()),
        "",
        "## Load",
        "",
        f"- {seconds:.0f} s of mixed traffic at a steady {rate:g} operations/s "
        f"(open loop, loopback, httpx asyncio), {load_seconds:.0f} s including the tail",
        f"- {total} HTTP requests ({total / load_seconds:.1f}/s), errors: {len(load.errors)}",
        f"- mix (share of operations): {', '.join(f'{k} {v}%' for k, v in MIX.items())}; "
        f"a session sync carries {SESSIONS_PER_SYNC} sessions",
        "",
        "| operation | requests | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {kind} | {load.counts[kind]} | {percentile(v, 50) * 1000:.1f} | "
            f"{percentile(v, 95) * 1000:.1f} | {percentile(v, 99) * 1000:.1f} |"
            for kind, v in sorted(load.latencies.items())
        ),
        "",
        "## Memory (VmRSS, MB)",
        "",
        f"Sampled every {SAMPLE_EVERY:.0f} s; warm-up is the first {warm_up:.0f} s; "
        f"bound: growth after warm-up ≤ {growth_mb:.0f} MB.",
        "",
        "| service | start | after warm-up | end | max | growth after warm-up |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {s} | {r['start']:.1f} | {r['warm']:.1f} | {r['end']:.1f} | {r['max']:.1f} | "
            f"{r['growth']:+.1f} |"
            for s, r in memory.items()
        ),
        "",
        "## Drain",
        "",
        f"- outboxes and queues empty {drain_seconds:.1f} s after the load stopped "
        f"(unpublished outbox rows left: {backlog}; non-empty queues: {busy or 'none'})",
        f"- service restarts during the soak: {sum(restarts.values())}",
        "",
    ]
    if load.errors:
        lines += ["## First errors", "", *(f"- `{e}`" for e in load.errors[:20]), ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
    if not failures:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failures else 0


def main() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "300"))
    rate = float(os.environ.get("SOAK_RATE", "20"))
    growth = float(os.environ.get("SOAK_RSS_GROWTH_MB", "30"))
    sys.exit(asyncio.run(run(seconds, rate, growth)))


if __name__ == "__main__":
    main()
