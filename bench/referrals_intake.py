"""Benchmark: referrals taken in per second by the referrals service (``POST /v1/referrals``).

What is measured: the referrals service running as its own process (uvicorn with uvloop
and httptools, as ``make run`` starts it) in a throw-away sandbox (its own database,
roles and vhost), with the real PostgreSQL and RabbitMQ behind it (its outbox relay
publishes every event while the load runs). Requests are signed as the gateway signs
them and sent straight to the service, so this is the service's own cost; issue 9's
through-the-gateway comparison builds on it. The load comes from a separate process
that builds every body before the clock starts.

Scenarios, each at a few concurrencies (requests in flight at once):

* ``new``: every referral a new, eligible person: validation, the person locks, the
  duplicate lookup, one insert of the referral and one of its three events.
* ``retry``: the same bodies posted again: each answered ``200`` with the stored
  referral (idempotency by ``external_ref``).
* ``same_person``: referrals from many partners for a few people: mostly
  ``duplicate``, with transactions queueing on the same person's locks.

Each (scenario, concurrency) is run several times; the median run is reported.
Results go to ``bench/results/referrals_intake.md`` with the machine's description.

    .venv/bin/python -m bench.referrals_intake            # full run (~1-2 minutes)
    .venv/bin/python -m bench.referrals_intake --quick    # a smoke run
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make the repo importable
    sys.path.insert(0, str(REPO))

import aio_pika  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.common import machine  # noqa: E402
from pathways.sandbox import Sandbox  # noqa: E402
from pathways.supervisor import Supervisor  # noqa: E402
from shared.caller import request_target, sign  # noqa: E402
from shared.events.envelope import new_envelope  # noqa: E402
from shared.events.gateway import ProgrammeDefined, ProviderArea  # noqa: E402

RESULTS = REPO / "bench" / "results" / "referrals_intake.md"
SCENARIOS = ("new", "retry", "same_person")


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...] = (1, 8, 32)
    referrals_per_run: int = 500
    runs: int = 3


# --- the load generator (runs in its own process) -------------------------------------


def _nino(rng: random.Random) -> str:
    first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(first) + rng.choice(second)
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            return f"{prefix}{rng.randrange(10**6):06d}{rng.choice('ABCD')}"


def build_bodies(spec: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(partner id, body) for every request of a run, as a partner system would send."""
    rng = random.Random(spec["seed"])
    partners = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(20)]
    people = [
        {"family_name": f"Person{rng.getrandbits(40):x}", "nino": _nino(rng)}
        for _ in range(spec["count"] if spec["scenario"] != "same_person" else 10)
    ]
    requests = []
    for n in range(spec["count"]):
        who = people[n % len(people)]
        body = {
            "external_ref": f"{spec['prefix']}-{n}",
            "programme": spec["programme"],
            "referred_on": "2024-02-03",
            "person": {
                "given_name": "Sam",
                "family_name": who["family_name"],
                "date_of_birth": "1981-05-17",
                "nino": who["nino"],
                "postcode": "WN1 1AA",
                "local_authority": "Wigan",
                "gender": "female",
                "disability": True,
                "phone": "07700900123",
            },
            "circumstances": {
                "benefit": "ESA",
                "months_out_of_work": 30,
                "criminal_justice": "licence",
                "treatment": "in_treatment",
            },
            "consent": {"given": True, "recorded_on": "2024-02-03"},
            "notes": "Referred after a work coach appointment; keen to start soon.",
        }
        requests.append((partners[n % len(partners)], orjson.dumps(body)))
    return requests


async def _post_all(spec: dict[str, Any], requests: list[tuple[str, bytes]]) -> dict[str, Any]:
    url, secret, concurrency = spec["url"], spec["secret"], spec["concurrency"]
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                partner_id, body = queue.get_nowait()
                headers = sign(
                    secret,
                    partner_id=partner_id,
                    kind="jcp",
                    method="POST",
                    target=request_target("/v1/referrals", ""),
                )
                headers["content-type"] = "application/json"
                started = time.perf_counter()
                response = await client.post("/v1/referrals", content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code not in (200, 201):
                    raise RuntimeError(
                        f"intake failed: {response.status_code} {response.text[:300]}"
                    )
                key = f"{response.status_code} {orjson.loads(response.content)['status']}"
                outcomes[key] = outcomes.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "referrals": len(requests),
        "seconds": elapsed,
        "per_second": len(requests) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[math.ceil(len(latencies) * 0.95) - 1] * 1000,
        "outcomes": outcomes,
    }


def load_generator_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    print(json.dumps(asyncio.run(_post_all(spec, build_bodies(spec)))))


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
        path = handle.name
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.referrals_intake", "--load-generator", path],
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


async def _define_programme(sandbox: Sandbox, url: str) -> str:
    """Publish a programme definition as the gateway would, and wait until it is in force."""
    code = f"bench-{uuid.uuid4().hex[:8]}"
    payload = ProgrammeDefined(
        code=code,
        name="Bench",
        eligible_benefits=["ESA", "JSA", "UC"],
        min_age=18,
        max_age=66,
        support_weeks=104,
        min_job_hours=16,
        sustainment_weeks=50,
        providers=[ProviderArea(partner_id=uuid.uuid4(), local_authorities=["Wigan"])],
        tariff={"attachment": 30000},
        targets={"job_start_rate": 0.2},
    )
    envelope = new_envelope(payload, producer="gateway")
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(
            aio_pika.Message(
                body=envelope.to_bytes(),
                message_id=str(envelope.event_id),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=envelope.type,
        )
    # A probe referral waits (up to the consistency wait) for the definition.
    probe = build_bodies(
        {"seed": 0, "count": 1, "scenario": "new", "prefix": "probe", "programme": code}
    )[0]
    headers = sign(
        sandbox.config.internal_secret,
        partner_id=probe[0],
        kind="jcp",
        method="POST",
        target="/v1/referrals",
    )
    headers["content-type"] = "application/json"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(20):
            response = await client.post("/v1/referrals", content=probe[1], headers=headers)
            if response.status_code in (200, 201) and response.json()["status"] == "accepted":
                return code
            await asyncio.sleep(0.5)
    raise RuntimeError("the programme definition never reached the referrals service")


async def run(plan: Plan, *, write: bool = True) -> dict[str, Any]:
    box = Sandbox.new("bench")
    await box.create()
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    supervisor = Supervisor(box.config, ["referrals"], log_dir=log_dir)
    about = machine()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {s: {} for s in SCENARIOS}
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=60)
        if not all(ready.values()):
            raise RuntimeError(f"referrals did not start; see {log_dir}")
        url = box.config.url("referrals")
        code = await _define_programme(box, url)
        base = {"url": url, "secret": box.config.internal_secret, "programme": code}
        for concurrency in plan.concurrencies:
            for run_no in range(plan.runs):
                new = {
                    **base,
                    "scenario": "new",
                    "prefix": f"c{concurrency}r{run_no}",
                    "seed": concurrency * 1000 + run_no,
                    "count": plan.referrals_per_run,
                    "concurrency": concurrency,
                }
                results["new"].setdefault(concurrency, []).append(run_load(new))
                # The very same requests again: every one a retry.
                results["retry"].setdefault(concurrency, []).append(run_load(new))
                same = {
                    **new,
                    "scenario": "same_person",
                    "prefix": f"s{concurrency}r{run_no}",
                    "seed": new["seed"] + 500_000,
                }
                results["same_person"].setdefault(concurrency, []).append(run_load(same))
                print(
                    f"concurrency {concurrency} run {run_no + 1}: "
                    + ", ".join(
                        f"{s} {results[s][concurrency][-1]['per_second']:,.0f}/s" for s in SCENARIOS
                    ),
                    flush=True,
                )
    finally:
        await supervisor.stop()
        await box.destroy()
    about["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
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
        "# Referral intake benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.referrals_intake`.",
        "",
        "## Machine",
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in about.items()),
        "",
        "The referrals service ran as one uvicorn process (uvloop, httptools) as `make run`",
        "starts it, called directly with gateway-signed headers, its outbox relay publishing",
        "to RabbitMQ meanwhile; PostgreSQL and RabbitMQ on the same machine; the load",
        "generator in its own process, bodies built before timing.",
        f"{plan['runs']} runs of {plan['referrals_per_run']} referrals per row; the median "
        "run is shown. The machine is shared: compare rows of one run, not runs.",
        "",
        "| scenario | concurrency | referrals/s | p50 ms | p95 ms | outcomes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for scenario in SCENARIOS:
        by_concurrency = summary["results"][scenario]
        for concurrency, runs in sorted(by_concurrency.items(), key=lambda kv: int(kv[0])):
            m = median_run(runs)
            outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(m["outcomes"].items()))
            lines.append(
                f"| {scenario} | {concurrency} | {m['per_second']:,.0f} | {m['p50_ms']:.1f} "
                f"| {m['p95_ms']:.1f} | {outcomes} |"
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
    plan = Plan(concurrencies=(1, 4), referrals_per_run=100, runs=1) if args.quick else Plan()
    summary = asyncio.run(run(plan, write=not args.no_write))
    print(report(summary))


if __name__ == "__main__":
    main()
