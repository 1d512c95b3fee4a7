"""``make bench``: the platform against this machine's own floor; writes bench/RESULTS.md.

    .venv/bin/python -m bench            # the full suite (under 15 minutes)
    .venv/bin/python -m bench --quick    # every figure, short runs (about 2 minutes)

Stages, in this order, each figure the median of ``runs`` runs (every run kept):

1. floors and 2. intake: wrk against bench/floor.py, bench/floor_outbox.py (the floor
   doing the outbox writes and publishing too) and the gateway, in turn.
3. event lag with intake paced at half the intake median (bench.event_lag).
4. sessions sync through the gateway (bench.sessions_gateway).
6. rebuild of the reporting projections (bench.reporting_events.rebuild_rates).
   The platform is then stopped, and last, on a quiet platform:
5. reports at scale (bench.reports_at_scale.measure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import event_lag, render, reports_at_scale, sessions_gateway
from bench.common import REPO, load_average, machine, median, run_wrk
from bench.cpu import CpuMeter
from bench.harness import Bench, floor_server, running_platform
from bench.profiles import profiled
from bench.reporting_events import rebuild_rates

RESULTS = REPO / "bench" / "RESULTS.md"
# wrk NINO serial bases (see bench/wrk/referrals.lua): one block per wrk run.
SERIAL_STEP = 400_000


@dataclass(frozen=True)
class Plan:
    runs: int = 3
    warmup_seconds: float = 3
    intake_seconds: float = 10
    lag_seconds: float = 10
    session_participants: int = 200
    session_batches: int = 20
    session_concurrency: int = 2
    rebuild_participants: int = 2000
    report_sizes: tuple[int, ...] = (100_000, 1_000_000)
    report_runs: int = 15

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            warmup_seconds=1,
            intake_seconds=3,
            lag_seconds=4,
            session_participants=20,
            session_batches=4,
            rebuild_participants=300,
            report_sizes=(10_000, 50_000),
            report_runs=5,
        )


PROFILED_SESSIONS_FACTOR = 10


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


class Serials:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> int:
        self.n += 1
        return self.n * SERIAL_STEP


def _service_pids(bench: Bench, names: Iterable[str] | None = None) -> dict[str, int]:
    """The running services' process ids (all of them, or those in ``names``)."""
    children = bench.platform.supervisor.children
    return {
        name: child.pid
        for name, child in children.items()
        if child.pid and (names is None or name in names)
    }


def _meter(bench: Bench) -> CpuMeter:
    platform = bench.platform
    return CpuMeter(
        _service_pids(bench),
        admin_dsn=platform.config.admin_dsn,
        database=platform.config.database,
    )


async def _intake(
    bench: Bench, plan: Plan, log_dir: Path, serials: Serials, profile_dir: Path | None
) -> dict[str, Any]:
    """Both floors and the gateway under the same wrk, in turn run by run so drift on a
    shared machine hits all three alike."""
    platform = bench.platform
    meter = _meter(bench)
    kinds = ("floor", "floor_outbox", "intake")
    out: dict[str, Any] = {kind: [] for kind in kinds}
    out |= {"cpu": [], "floor_cpu": [], "floor_outbox_cpu": []}
    out["drain_seconds"] = []
    out["floor_outbox_drain_seconds"] = []
    database = platform.config.database
    async with (
        floor_server(database, log_dir) as (floor_url, floor_pid),
        floor_server(
            database,
            log_dir,
            app="bench.floor_outbox:app",
            amqp_url=platform.config.amqp_url,
        ) as (outbox_floor_url, outbox_floor_pid),
    ):

        def floor_meter(pid: int, *, broker: bool) -> CpuMeter:
            # The floors log in as postgres; only the outbox floor uses the broker.
            return CpuMeter(
                {"floor": pid},
                admin_dsn=platform.config.admin_dsn,
                database=database,
                pg_user="postgres",
                broker=broker,
            )

        meters = {
            "floor": floor_meter(floor_pid, broker=False),
            "floor_outbox": floor_meter(outbox_floor_pid, broker=True),
            "intake": meter,
        }
        targets = {
            "floor": (floor_url, None),
            "floor_outbox": (outbox_floor_url, None),
            "intake": (bench.gateway_url, bench.referrer.api_key),
        }

        async def one(kind: str, seconds: float, tag: str) -> Any:
            url, key = targets[kind]
            result = await run_wrk(
                url,
                programme=bench.programme,
                run_tag=tag,
                api_key=key,
                seconds=seconds,
                serial_base=serials.next(),
            )
            if kind == "intake":
                bench.referrals_sent += result.requests - result.non_2xx
            return result

        async def settle(kind: str) -> None:
            # Every run starts from a settled platform, not with the events of the
            # burst before still being relayed or consumed; how long that took is kept.
            if kind == "intake":
                out["drain_seconds"].append(await event_lag.drain(bench))
            elif kind == "floor_outbox":
                out["floor_outbox_drain_seconds"].append(await _relayed(outbox_floor_url))

        for kind in targets:  # connections, caches and plans warm before timing
            await one(kind, plan.warmup_seconds, f"warm-{kind}")
        await event_lag.drain(bench)
        await _relayed(outbox_floor_url)
        for run_no in range(plan.runs):
            turn = run_no % len(kinds)
            for kind in kinds[turn:] + kinds[:turn]:
                before = await meters[kind].snapshot()
                result = await one(kind, plan.intake_seconds, f"{kind}-{run_no}")
                out[kind].append(result.as_dict())
                used = await meters[kind].since(before)
                out["cpu" if kind == "intake" else f"{kind}_cpu"].append(
                    {name: sec * 1000 / max(result.requests, 1) for name, sec in used.items()}
                )
                await settle(kind)
                log(
                    f"{kind} run {run_no + 1}: {result.per_second:,.0f}/s, "
                    f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
                )
    if profile_dir is not None:
        # One more intake run, untimed, with every service sampled by py-spy.
        result, out["profile"] = await profiled(
            _service_pids(bench, ("gateway", "referrals", "casework", "reporting")),
            profile_dir,
            one("intake", plan.intake_seconds, "profiled"),
        )
        log(f"profiled intake run: {result.per_second:,.0f}/s (not counted)")
    return out


async def _relayed(floor_url: str, timeout: float = 60) -> float:
    """Wait until the outbox floor's relay has published every event: seconds taken."""
    t = time.perf_counter()
    async with httpx.AsyncClient(timeout=5) as client:
        while (await client.get(f"{floor_url}/backlog")).json()["unpublished"]:
            if time.perf_counter() - t > timeout:
                raise RuntimeError(f"the outbox floor's relay fell {timeout:.0f}s behind")
            await asyncio.sleep(0.1)
    return time.perf_counter() - t


async def _lag(bench: Bench, plan: Plan, intake_rate: float, serials: Serials) -> dict:
    state = event_lag.ProbeState()
    runs = []
    for run_no in range(plan.runs):
        # Start from an empty pipeline: the consumers may still be working through the
        # backlog full-speed intake left (that drain time is reported too).
        drained = await event_lag.drain(bench)
        log(f"event lag: backlog drained in {drained:.1f}s")
        measured = await event_lag.measure(
            bench,
            state=state,
            target_per_second=intake_rate / 2,
            seconds=plan.lag_seconds,
            run_tag=f"lag-{run_no}",
            serial_base=serials.next(),
        )
        runs.append({**measured.as_dict(), "drained_seconds": drained})
        log(
            f"event lag run {run_no + 1}: p50 {measured.p50_ms:.0f} ms, "
            f"p99 {measured.p99_ms:.0f} ms over {len(measured.lags_ms)} probes "
            f"at {measured.paced.per_second:,.0f} referrals/s"
        )
    # The same probe with (almost) no other load: the pipeline's own latency.
    await event_lag.drain(bench)
    baseline = await event_lag.measure(
        bench,
        state=state,
        target_per_second=0,
        seconds=plan.lag_seconds,
        run_tag="lag-baseline",
        serial_base=serials.next(),
    )
    log(f"event lag, probe only: p50 {baseline.p50_ms:.0f} ms, p99 {baseline.p99_ms:.0f} ms")
    return {"runs": runs, "baseline": baseline.as_dict()}


async def _sessions(bench: Bench, plan: Plan, profile_dir: Path | None) -> dict[str, Any]:
    # Casework may still be taking in the intake's backlog of acceptances.
    drained = await event_lag.drain(bench)
    log(f"sessions: backlog drained in {drained:.1f}s")
    t = time.perf_counter()
    participants = await sessions_gateway.seed_participants(bench, plan.session_participants)
    log(f"sessions: {len(participants)} participants seeded in {time.perf_counter() - t:.0f}s")
    runs, cpu = [], []
    meter = _meter(bench)
    for run_no in range(plan.runs):
        before = await meter.snapshot()
        result = await sessions_gateway.sync_run(
            bench,
            participants,
            batches=plan.session_batches,
            concurrency=plan.session_concurrency,
            tag=f"sync{run_no}",
            seed=run_no,
        )
        used = await meter.since(before)
        cpu.append({name: sec * 1000 / plan.session_batches for name, sec in used.items()})
        runs.append(result)
        log(f"sessions run {run_no + 1}: {result['per_second']:,.0f}/s")
    out = {"participants": len(participants), "runs": runs, "cpu": cpu}
    if profile_dir is not None:
        result, out["profile"] = await profiled(
            _service_pids(bench, ("gateway", "casework")),
            profile_dir,
            sessions_gateway.sync_run(
                bench,
                participants,
                # Longer than a timed run: at 200 samples a second a one-second run
                # would leave too few samples to say where the time went.
                batches=plan.session_batches * PROFILED_SESSIONS_FACTOR,
                concurrency=plan.session_concurrency,
                tag="profiled",
                seed=99,
            ),
        )
        log(f"profiled sessions run: {result['per_second']:,.0f}/s (not counted)")
    return out


async def run(
    plan: Plan, *, quick: bool, only: set[str] | None, profile: bool = True
) -> dict[str, Any]:
    started = datetime.now(UTC)
    about = machine()
    log(f"machine: {about}")
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    results: dict[str, Any] = {}

    def wanted(stage: str) -> bool:
        return only is None or stage in only

    failures: dict[str, str] = {}

    async def stage(name: str, work: Any) -> Any:
        """Run one stage; a failure is written into RESULTS.md and the run goes on."""
        try:
            return await work
        except Exception as exc:
            log(f"{name} FAILED: {exc!r}")
            failures[name] = f"{type(exc).__name__}: {exc}"[:500]
            return None

    t0 = time.perf_counter()
    if any(wanted(s) for s in ("intake", "lag", "sessions", "rebuild")):
        log(f"starting the platform (logs in {log_dir})")
        serials = Serials()
        profile_dir = log_dir / "profiles" if profile else None
        async with running_platform(log_dir) as bench:
            if wanted("intake") or wanted("lag"):
                results["intake"] = await stage(
                    "intake", _intake(bench, plan, log_dir, serials, profile_dir)
                )
            if wanted("lag") and results.get("intake"):
                rate = median([r["per_second"] for r in results["intake"]["intake"]])
                results["lag"] = await stage("lag", _lag(bench, plan, rate, serials))
            if wanted("sessions"):
                results["sessions"] = await stage("sessions", _sessions(bench, plan, profile_dir))
            if wanted("rebuild"):
                results["rebuild"] = await stage(
                    "rebuild",
                    rebuild_rates(
                        bench.platform.config.database_url("reporting"),
                        plan.rebuild_participants,
                        plan.runs,
                    ),
                )
                for r in (results["rebuild"] or {}).get("runs", []):
                    log(f"rebuild: {r['events']:,} events in {r['seconds']:.1f}s")
    results["platform_seconds"] = time.perf_counter() - t0
    if wanted("scale"):
        t = time.perf_counter()
        measured = await stage(
            "scale",
            reports_at_scale.measure(
                list(plan.report_sizes), plan.report_runs, workers=os.cpu_count() or 1, log=log
            ),
        )
        if measured is not None:
            results["scale"] = {
                "pg": measured.pg,
                "loads": [asdict(loaded) for loaded in measured.loads],
                "timings": {str(size): t for size, t in measured.timings.items()},
                "seconds": time.perf_counter() - t,
            }
    results = {k: v for k, v in results.items() if v is not None}
    about["load_average_at_end"] = load_average()
    return {
        "started": started.isoformat(timespec="seconds"),
        "seconds": (datetime.now(UTC) - started).total_seconds(),
        "quick": quick,
        "plan": asdict(plan),
        "machine": about,
        "results": results,
        "log_dir": str(log_dir),
        "failures": failures,
    }


def prepare_output(path: Path) -> str | None:
    """Make the directory for ``path`` (and its .json beside it); say why if it can't be."""
    if path.is_dir():
        return "is a directory; name the RESULTS.md file to write"
    if path.suffix != ".md":
        # The summary goes to the same name with .json, and `python -m bench.render`
        # renders that back to .md: any other name would be overwritten or orphaned.
        return "name a .md file (its .json summary is written beside it)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot make its directory ({error.strerror})"
    if not os.access(path.parent, os.W_OK):
        return "its directory is not writable"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 2 minutes)")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="the .md file to write (default bench/RESULTS.md); its .json summary goes beside it",
    )
    parser.add_argument(
        "--only",
        help="comma-separated stages for development: intake,lag,sessions,rebuild,scale",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the extra runs sampled by py-spy"
    )
    args = parser.parse_args(argv)
    # Checked before the runs, not after: an output that cannot be written would
    # otherwise throw away every figure at the end of a quarter of an hour.
    problem = prepare_output(args.output)
    if problem:
        parser.error(f"--output {args.output}: {problem}")
    plan = Plan.quick() if args.quick else Plan()
    only = set(args.only.split(",")) if args.only else None
    summary = asyncio.run(run(plan, quick=args.quick, only=only, profile=not args.no_profile))
    # The raw figures beside the note, for anyone who wants to re-render or compare.
    args.output.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=str))
    args.output.write_text(render.render(summary))
    log(f"wrote {args.output} in {summary['seconds']:.0f}s")


if __name__ == "__main__":
    main()
