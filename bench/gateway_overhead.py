"""Benchmark: what the gateway costs. Referral intake through the gateway against the
same referrals posted straight to the referrals service, in one run.

What is measured: the gateway and the referrals service each running as their own
process (uvicorn with uvloop and httptools, as ``make run`` starts them) in a
throw-away sandbox (database, roles, vhost) with the real PostgreSQL and RabbitMQ.
Partners and the programme are made through the gateway's admin API, as in
production. Then, alternately:

* ``direct``: ``POST /v1/referrals`` to the referrals service, signed as the gateway
  signs (what the service alone can do);
* ``gateway``: the same kind of request with the partner's API key to the gateway,
  which authenticates, authorizes, rate-limits (limits raised so they never bite),
  audits and forwards it.

Every referral is a new, eligible person (a fresh body each time, built before the
clock starts, in a separate load-generator process). Modes alternate run by run so
drift on a shared machine hits both alike; each mode's median run is reported, and
the ratio gateway/direct (the issue asks for at least 0.70 at concurrency 32).
Results go to ``bench/results/gateway_overhead.md`` with the machine's description.

    .venv/bin/python -m bench.gateway_overhead            # full run (~1-2 minutes)
    .venv/bin/python -m bench.gateway_overhead --quick    # a smoke run
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

import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.common import machine  # noqa: E402
from pathways.sandbox import Sandbox  # noqa: E402
from pathways.supervisor import Supervisor  # noqa: E402
from shared.caller import request_target, sign  # noqa: E402

RESULTS = REPO / "bench" / "results" / "gateway_overhead.md"
MODES = ("direct", "gateway")
TARGET_RATIO = 0.70


@dataclass(frozen=True)
class Plan:
    concurrency: int = 32
    referrals_per_run: int = 1000
    runs: int = 5  # per mode
    warmup: int = 200


# --- the load generator (runs in its own process) -------------------------------------


def _nino(rng: random.Random) -> str:
    first, second = "ABCEGHJKLMNOPRSTWXYZ", "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(first) + rng.choice(second)
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            return f"{prefix}{rng.randrange(10**6):06d}{rng.choice('ABCD')}"


def build_bodies(spec: dict[str, Any]) -> list[bytes]:
    """One new, eligible referral per request, as a partner system would send it."""
    rng = random.Random(spec["seed"])
    bodies = []
    for n in range(spec["count"]):
        body = {
            "external_ref": f"{spec['prefix']}-{n}",
            "programme": spec["programme"],
            "referred_on": "2024-02-03",
            "person": {
                "given_name": "Sam",
                "family_name": f"Person{rng.getrandbits(48):x}",
                "date_of_birth": "1981-05-17",
                "nino": _nino(rng),
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
        bodies.append(orjson.dumps(body))
    return bodies


async def _post_all(spec: dict[str, Any], bodies: list[bytes]) -> dict[str, Any]:
    concurrency = spec["concurrency"]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=spec["url"], timeout=60, limits=limits) as client:

        def headers() -> dict[str, str]:
            if spec["mode"] == "gateway":
                return {
                    "authorization": f"Bearer {spec['api_key']}",
                    "content-type": "application/json",
                }
            signed = sign(
                spec["secret"],
                partner_id=spec["partner_id"],
                kind="jcp",
                method="POST",
                target=request_target("/v1/referrals", ""),
            )
            return {**signed, "content-type": "application/json"}

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post("/v1/referrals", content=body, headers=headers())
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code != 201:
                    raise RuntimeError(
                        f"{spec['mode']}: {response.status_code} {response.text[:300]}"
                    )

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "mode": spec["mode"],
        "referrals": len(bodies),
        "seconds": elapsed,
        "per_second": len(bodies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[math.ceil(len(latencies) * 0.95) - 1] * 1000,
        "statuses": statuses,
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
            [sys.executable, "-m", "bench.gateway_overhead", "--load-generator", path],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        os.unlink(path)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the harness ---------------------------------------------------------------------


async def _set_up(box: Sandbox) -> dict[str, Any]:
    """A referrer and a provider made through the admin API, a programme defined, and a
    probe referral accepted through the gateway (so the definition is in force)."""
    gateway = box.config.gateway_url
    admin = {"authorization": f"Bearer {box.config.admin_token}"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30, headers=admin) as client:
        referrer = (
            await client.post("/admin/partners", json={"name": "Bench JCP", "kind": "jcp"})
        ).json()
        provider = (
            await client.post(
                "/admin/partners", json={"name": "Bench provider", "kind": "provider"}
            )
        ).json()
        code = f"bench-{uuid.uuid4().hex[:8]}"
        defined = await client.post(
            "/admin/programmes",
            json={
                "code": code,
                "name": "Gateway bench",
                "eligible_benefits": ["ESA", "JSA", "UC"],
                "min_age": 18,
                "max_age": 66,
                "support_weeks": 104,
                "min_job_hours": 16,
                "sustainment_weeks": 50,
                "providers": [{"partner_id": provider["id"], "local_authorities": ["Wigan"]}],
                "tariff": {
                    "attachment": 30000,
                    "job_start": 120000,
                    "sustained_13": 40000,
                    "sustained_26": 40000,
                    "sustained_50": 60000,
                    "qualification": 15000,
                    "volunteering_start": 5000,
                    "education_start": 5000,
                },
                "targets": {"job_start_rate": 0.2, "sustainment_rate": 0.75},
            },
        )
        if defined.status_code != 201:
            raise RuntimeError(f"programme not defined: {defined.status_code} {defined.text}")
    probe = build_bodies({"seed": 0, "count": 1, "prefix": "probe", "programme": code})[0]
    headers = {"authorization": f"Bearer {referrer['api_key']}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        response = await client.post("/v1/referrals", content=probe, headers=headers)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"probe referral failed: {response.status_code} {response.text}")
    return {"programme": code, "partner_id": referrer["id"], "api_key": referrer["api_key"]}


async def run(plan: Plan, *, write: bool = True) -> dict[str, Any]:
    box = Sandbox.new("bench")
    await box.create()
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-bench-gateway-"))
    unlimited = {"per_second": 1_000_000, "burst": 1_000_000}
    supervisor = Supervisor(
        box.config,
        ["gateway", "referrals"],
        log_dir=log_dir,
        extra_env={
            "gateway": {
                "GATEWAY_RATE_LIMITS": json.dumps(
                    {k: unlimited for k in ("jcp", "probation", "treatment", "provider")}
                    | {"programme_office": unlimited}
                ),
            },
        },
    )
    about = machine()
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=60)
        if not all(ready.values()):
            raise RuntimeError(f"services did not start: {ready}; logs in {log_dir}")
        setup = await _set_up(box)
        base = {
            **setup,
            "secret": box.config.internal_secret,
            "concurrency": plan.concurrency,
        }
        urls = {"direct": box.config.url("referrals"), "gateway": box.config.gateway_url}
        for mode in MODES:  # warm both paths (connections, caches) before timing
            run_load(
                {
                    **base,
                    "mode": mode,
                    "url": urls[mode],
                    "prefix": f"warm-{mode}",
                    "seed": hash(mode) & 0xFFFF,
                    "count": plan.warmup,
                }
            )
        for run_no in range(plan.runs):
            order = MODES if run_no % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                spec = {
                    **base,
                    "mode": mode,
                    "url": urls[mode],
                    "prefix": f"{mode}-{run_no}",
                    "seed": run_no * 10 + MODES.index(mode),
                    "count": plan.referrals_per_run,
                }
                results[mode].append(run_load(spec))
            print(
                f"run {run_no + 1}: "
                + ", ".join(f"{m} {results[m][-1]['per_second']:,.0f}/s" for m in MODES),
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


def ratio(summary: dict[str, Any]) -> float:
    direct = median_run(summary["results"]["direct"])["per_second"]
    through = median_run(summary["results"]["gateway"])["per_second"]
    return through / direct


def report(summary: dict[str, Any]) -> str:
    about, plan = summary["machine"], summary["plan"]
    kept = ratio(summary)
    lines = [
        "# Gateway overhead benchmark",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.gateway_overhead`.",
        "",
        "## Machine",
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in about.items()),
        "",
        "## Method",
        "",
        "The gateway and the referrals service ran as one uvicorn process each (uvloop,",
        "httptools) as `make run` starts them, with PostgreSQL and RabbitMQ on the same",
        "machine; the load generator ran in its own process with every body built before",
        f"timing. Each run posts {plan['referrals_per_run']} new, eligible referrals at "
        f"concurrency {plan['concurrency']}:",
        "`direct` to the referrals service with gateway-signed headers, `gateway` through",
        "the gateway with an API key (authentication, kind check, rate limit, audit,",
        f"signed forwarding). Modes alternate; {plan['runs']} runs each after a warm-up;",
        "the median run is shown. Everything shares the machine's cores (and, where this",
        "ran, other people's test runs), so the gateway's CPU time is taken from the",
        "service's: the ratio is a pessimistic measure of its cost.",
        "",
        "| mode | referrals/s | p50 ms | p95 ms | runs (referrals/s) |",
        "|---|---:|---:|---:|---|",
    ]
    for mode in MODES:
        runs = summary["results"][mode]
        m = median_run(runs)
        every = ", ".join(f"{r['per_second']:,.0f}" for r in runs)
        lines.append(
            f"| {mode} | {m['per_second']:,.0f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {every} |"
        )
    verdict = "meets" if kept >= TARGET_RATIO else "misses"
    lines += [
        "",
        f"**Through the gateway: {kept:.0%} of direct throughput** ({verdict} the "
        f"{TARGET_RATIO:.0%} target).",
        "",
    ]
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
    plan = Plan(referrals_per_run=200, runs=1, warmup=50) if args.quick else Plan()
    summary = asyncio.run(run(plan, write=not args.no_write))
    print(report(summary))


if __name__ == "__main__":
    main()
