"""bench/RESULTS.md from the orchestrator's summary: figures first, then how each was
measured and what limits it.

After changing the wording here, re-render the committed results without rerunning the
benchmarks (a test checks RESULTS.md is what RESULTS.json renders)::

    .venv/bin/python -m bench.render                        # bench/RESULTS.md
    .venv/bin/python -m bench.render /tmp/run/RESULTS.json  # /tmp/run/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.common import REPO, median
from bench.event_lag import PACED_CONNECTIONS, PROBE_INTERVAL, SAMPLE_INTERVAL
from bench.profiles import RATE
from bench.reports_at_scale import REPORTS
from bench.sessions_sync import BATCH as SESSION_BATCH
from bench.sessions_sync import TARGET_PER_SECOND as SESSIONS_GOAL

INTAKE_GOAL = 0.4
LAG_GOAL_MS = 1000.0
REPORT_GOAL_MS = 300.0
CPU_PARTS = (
    "floor",
    "gateway",
    "referrals",
    "casework",
    "outcomes",
    "reporting",
    "postgresql",
    "rabbitmq",
)


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _runs(values: list[float], digits: int = 0) -> str:
    return ", ".join(_n(v, digits) for v in values)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def render(summary: dict[str, Any]) -> str:
    r = summary["results"]
    plan = summary["plan"]
    out: list[str] = []
    w = out.append
    w("# Benchmarks: Pathways against this machine's floor")
    w("")
    mode = (
        "`python -m bench --quick` (short runs: a smoke test, not the figures)"
        if (summary["quick"])
        else "`make bench`"
    )
    w(
        f"Measured {summary['started']} by {mode}, in {summary['seconds'] / 60:.1f} minutes. "
        f"Every figure is the median of {plan['runs']} runs; every run's value is listed."
    )
    w("")
    w("## Machine")
    w("")
    for key, value in summary["machine"].items():
        w(f"- {key.replace('_', ' ')}: {value}")
    w("")
    w(
        "PostgreSQL, RabbitMQ, the services and the load generator all share these cores. "
        "A load average well above the core count at start means other work was running "
        "and every throughput below is low by that much."
    )
    w("")
    # The machine the figures were measured on, not the one rendering them.
    cores = int(summary["machine"].get("cores") or 1)
    rows, sections = [], []
    if "intake" in r:
        _intake(r["intake"], plan, cores, rows, sections)
    if "lag" in r:
        _lag(r["lag"], plan, rows, sections)
    if "sessions" in r:
        _sessions(r["sessions"], plan, cores, rows, sections)
    if "scale" in r:
        _scale(r["scale"], plan, rows, sections)
    if "rebuild" in r:
        _rebuild(r["rebuild"], rows, sections)
    if summary.get("failures"):
        w("## Stages that failed")
        w("")
        for name, error in summary["failures"].items():
            w(f"- **{name}**: `{error}` (service logs: `{summary.get('log_dir')}`)")
        w("")
    w("## Figures")
    w("")
    w("| # | figure | median | every run | goal | |")
    w("|---|---|---:|---|---|---|")
    out.extend(rows)
    w("")
    for section in sections:
        out.extend(section)
        w("")
    return "\n".join(out)


def _intake(data: dict, plan: dict, cores: int, rows: list, sections: list) -> None:
    floor = [x["per_second"] for x in data["floor"]]
    intake = [x["per_second"] for x in data["intake"]]
    ratio = median(intake) / median(floor) if floor and median(floor) else math.nan
    rows.append(
        f"| 1 | floor: referrals/s, bare FastAPI + one INSERT, c32 | {_n(median(floor))} "
        f"| {_runs(floor)} | (the reference) | |"
    )
    outbox_floor = [x["per_second"] for x in data.get("floor_outbox", [])]
    if outbox_floor:
        rows.append(
            "| 1 | floor with the outbox: referrals/s, the referral and its 2 events in one "
            f"INSERT, relayed to RabbitMQ, c32 | {_n(median(outbox_floor))} "
            f"| {_runs(outbox_floor)} | (a re-based reference) | |"
        )
    rows.append(
        f"| 2 | intake: referrals/s through the gateway, c32 | {_n(median(intake))} "
        f"| {_runs(intake)} | ≥ {INTAKE_GOAL} x floor | {_verdict(ratio >= INTAKE_GOAL)} |"
    )
    rows.append(
        f"| 2 | intake / floor | {_n(ratio, 2)} | | ≥ {INTAKE_GOAL} | "
        f"{_verdict(ratio >= INTAKE_GOAL)} |"
    )
    if outbox_floor and median(outbox_floor):
        rebased = median(intake) / median(outbox_floor)
        would = "would be met" if rebased >= INTAKE_GOAL else "would be missed"
        rows.append(
            f"| 2 | intake / floor with the outbox | {_n(rebased, 2)} | | (≥ {INTAKE_GOAL}, "
            f"were it re-based) | {would} |"
        )
    drains = data.get("drain_seconds", [])
    if len(drains) == len(data["intake"]):
        # The burst rate leaves the consumers behind: counting the time they need to catch
        # up gives the rate the whole platform can keep up.
        kept = [
            x["requests"] / (x["seconds"] + d) for x, d in zip(data["intake"], drains, strict=True)
        ]
        rows.append(
            f"| 2 | intake sustained: referrals/s counting the time the consumers need to "
            f"catch up after each run | {_n(median(kept))} | {_runs(kept)} | | |"
        )
    relayed = data.get("floor_outbox_drain_seconds", [])
    if outbox_floor and len(relayed) == len(outbox_floor):
        kept = [
            x["requests"] / (x["seconds"] + d)
            for x, d in zip(data["floor_outbox"], relayed, strict=True)
        ]
        rows.append(
            "| 1 | floor with the outbox sustained: referrals/s counting the time its relay "
            f"needs to catch up after each run | {_n(median(kept))} | {_runs(kept)} | | |"
        )
    kinds = ("floor", "floor_outbox", "intake") if outbox_floor else ("floor", "intake")
    errors = sum(x["non_2xx"] + x["socket_errors"] for k in kinds for x in data[k])
    if errors:
        rows.append(f"| 1-2 | failed requests (non-2xx or socket errors) | {errors} | | 0 | |")
    for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
        for kind in kinds:
            values = [x[key] for x in data[kind]]
            rows.append(
                f"| {2 if kind == 'intake' else 1} | {_KIND_NAMES[kind]} latency {label}, ms | "
                f"{_n(median(values), 1)} | {_runs(values, 1)} | | |"
            )
    s = [
        "## 1-2. Floor and intake",
        "",
        f"wrk (`-t2 -c32`, {plan['intake_seconds']:.0f} s a run after a "
        f"{plan['warmup_seconds']:.0f} s warm-up of each) runs `bench/wrk/referrals.lua`: "
        "every request a new, eligible person (own NINO and name), so each referral takes "
        "the full path (validation, eligibility, the duplicate check, the insert and its "
        "outbox events). The floor is `bench/floor.py` as its own uvicorn process (uvloop, "
        "httptools, one worker): the same `ReferralIn` validation and one asyncpg INSERT, "
        "no authentication, no events. "
        + (OUTBOX_FLOOR_METHOD if outbox_floor else "")
        + "Intake goes through the gateway with a Jobcentre "
        "API key (authentication, authorization, rate limit, audit, signed forwarding) to "
        "the referrals service, whose outbox relay publishes to RabbitMQ and whose events "
        "casework and reporting consume meanwhile. "
        + ("The floors and intake take turns" if outbox_floor else "Floor and intake alternate")
        + " run by run, "
        "and every run starts from a settled platform: after each intake run the "
        "orchestrator waits until the report counts every referral and no event waits in "
        "an outbox or queue (that took "
        f"{_runs(data.get('drain_seconds', []), 1)} s after the {plan['intake_seconds']:.0f} s "
        "bursts: the consumers' catching up, which the intake rate does not include"
        + (
            f"; the outbox floor's relay needed {_runs(relayed, 1)} s after its bursts"
            if outbox_floor
            else ""
        )
        + "). "
        "The platform runs as `make run` starts it, with database pools of 5 (+5 overflow) "
        "for referrals and casework, 3 for the gateway and reporting, 2 for outcomes "
        "(bench/harness.py; the floor's pool is 10), production retry delays and outbox "
        "polling, and rate limits raised out of reach.",
        "",
    ]
    if data.get("cpu"):
        s += ["Intake:", "", *_cpu_table(data["cpu"], "referral", "referrals/s", 2, cores)]
    if data.get("floor_cpu"):
        s += ["Floor:", "", *_cpu_table(data["floor_cpu"], "referral", "referrals/s", 2, cores)]
    if data.get("floor_outbox_cpu"):
        s += [
            "Floor with the outbox:",
            "",
            *_cpu_table(data["floor_outbox_cpu"], "referral", "referrals/s", 2, cores),
        ]
    if data.get("cpu") and data.get("floor_cpu"):
        times = _cpu_total(data["cpu"]) / _cpu_total(data["floor_cpu"])
        s += [
            f"A referral through the platform costs {times:.1f} times the CPU of a floor "
            f"referral, so where both are CPU-bound the ratio cannot pass about "
            f"{1 / times:.2f}; the floor is one process and uses at most one core, the "
            "platform's five processes can use both, which is what lifts the measured "
            "ratio above that.",
            "",
        ]
    if data.get("cpu") and floor and median(floor):
        s += [_intake_path_ceiling(data["cpu"], median(floor), cores), ""]
    if data.get("cpu") and data.get("floor_outbox_cpu") and outbox_floor:
        s += [
            _rebased_floor(
                median(intake),
                median(outbox_floor),
                median(floor),
                _cpu_total(data["cpu"]) / _cpu_total(data["floor_outbox_cpu"]),
            ),
            "",
        ]
    s += _profile(data.get("profile", {}), "intake")
    s += ["**What limits it.** " + INTAKE_NOTE]
    sections.append(s)


_KIND_NAMES = {"floor": "floor", "floor_outbox": "floor with the outbox", "intake": "intake"}

OUTBOX_FLOOR_METHOD = (
    "The floor with the outbox (`bench/floor_outbox.py`, its own uvicorn process the same "
    "way) measures what re-basing the goal on a floor that does the platform's writes "
    "would mean: the same validation, then one statement inserting the referral and its "
    "two events (received, accepted) into an outbox table, and the platform's own "
    "outbox relay (`shared.outbox.OutboxRelay`, woken by the same NOTIFY trigger) "
    "publishing them with confirms to a durable queue; no gateway, no authentication, no "
    "duplicate check, no consumers. "
)

INTAKE_NOTE = (
    "Not one hot spot but the split itself. The floor spends well under a millisecond "
    "of Python and less PostgreSQL per referral, in one process. Through the platform "
    "the same referral crosses two HTTP servers (the gateway authenticates, authorizes, "
    "rate-limits, audits and forwards it on a kept-alive connection of its own client), "
    "the referrals service routes it "
    "through FastAPI and Starlette (dependency resolution, exception middleware), "
    "validates the body and the response with pydantic and checks eligibility, then "
    "writes in one transaction of two round trips on the asyncpg driver (the duplicate "
    "check, then one statement writing the referral, its outbox events and the "
    "idempotency key); the relay publishes the events, casework and reporting apply "
    "them set-based a batch at a time, and PostgreSQL does the work of all of them. The "
    "CPU table above is the whole story: the 0.4 goal needs the platform within about "
    "2.5 times the floor's CPU per referral, and the tables show it costs far more. "
    "Taking a hop or a framework out of the path would not close that: the gateway's "
    "whole share is its column in the table above (`python -m bench.gateway_overhead` "
    "compares posting straight to the referrals service with posting through the "
    "gateway; bench/results/gateway_overhead.md has its last figures), and serving the "
    "route below FastAPI would save a part of the referrals column; each takes off a "
    "fraction where the goal needs intake several times higher. The py-spy profiles "
    "point the same way: much of each service's own CPU is in calls that write to a "
    "socket (uvicorn's `send` to the caller, asyncpg's `execute` to PostgreSQL, the "
    "streams to RabbitMQ), whose samples include the kernel's loopback delivery, so "
    "the hops themselves show there rather than a Python hot spot. "
    "Most of the gap is work the "
    "floor does not do at all: the hop, the outbox, publishing, and two consumers' "
    "projections, all on the same two cores. Meeting 0.4 here is the steering group's "
    "call, not a local fix: the two paragraphs above measure how far each answer "
    "would go, a floor that also does the outbox writes and publishing (re-basing the "
    "goal) and moving the consumers and the data stores off the request path's "
    "cores (a different deployment). "
    "The burst rate is also more than the platform keeps up: casework's and "
    "reporting's consumers fall a few seconds behind during a burst and need the drain "
    "times above to catch up; the 'intake sustained' row counts that time."
)


def _intake_path_ceiling(cpu: list[dict], floor_per_second: float, cores: int) -> str:
    """How far intake could go if nothing but the request path used these cores.

    This bounds the "different architecture" answer (consumers, PostgreSQL and RabbitMQ
    on other machines): the two processes every referral passes through would still
    spend their own CPU here, and the referrals service is one process on one core.
    """
    gateway, referrals = _part_median(cpu, "gateway"), _part_median(cpu, "referrals")
    path = gateway + referrals
    both = cores * 1000 / path if path else math.nan
    one = 1000 / referrals if referrals else math.nan
    return (
        f"Even with the consumers, PostgreSQL and RabbitMQ moved off this machine, the "
        f"gateway's and the referrals service's own CPU ({_n(gateway, 2)} + "
        f"{_n(referrals, 2)} ms a referral) would cap intake on {cores} cores near "
        f"{_n(both)} referrals/s, {_n(both / floor_per_second, 2)} of the floor; and the "
        f"referrals service, one process, can serve at most about {_n(one)}/s on its one "
        f"core ({_n(one / floor_per_second, 2)} of the floor) unless it runs more workers. "
        + (
            f"That ceiling is above {INTAKE_GOAL}, so moving the rest away could meet the "
            "goal (with more referrals workers where the one-process figure is below it)."
            if both / floor_per_second >= INTAKE_GOAL
            else f"So moving the rest away is not enough on its own to reach {INTAKE_GOAL}: "
            "the gateway and the referrals service would also need more cores (and "
            "referrals more workers) or much less CPU per request."
        )
    )


def _rebased_floor(intake: float, outbox_floor: float, floor: float, times_the_cpu: float) -> str:
    """What re-basing the goal on the floor with the outbox would mean, from this run."""
    ratio = intake / outbox_floor
    return (
        f"The floor with the outbox serves {_n(outbox_floor)} referrals/s, "
        f"{_n(outbox_floor / floor, 2)} of the bare floor: the outbox write and the "
        f"relay's publishing are that much of a referral's cost even done as cheaply as "
        f"the platform's own parts allow. Intake is {_n(ratio, 2)} of it, and a referral "
        f"through the platform costs {times_the_cpu:.1f} times its CPU. "
        + (
            f"So re-basing the goal on this floor would meet {INTAKE_GOAL}."
            if ratio >= INTAKE_GOAL
            else f"So re-basing the goal on this floor would not by itself meet "
            f"{INTAKE_GOAL} either: what is left is the gateway hop, the referrals "
            "service's own checks (signature, duplicate check, eligibility, idempotency) "
            "and the consumers' projections."
        )
    )


def _cpu_table(cpu: list[dict], unit: str, rate: str, digits: int, cores: int) -> list[str]:
    """CPU per unit of work by part (median of the runs), and the ceiling it implies."""
    parts = [p for p in CPU_PARTS if any(p in c for c in cpu)]
    per_part = {p: _part_median(cpu, p) for p in parts}
    total = sum(per_part.values())
    return [
        f"CPU per {unit} during the timed runs (ms, median of the runs; from /proc: each "
        "service process, the sandbox's PostgreSQL backends, RabbitMQ):",
        "",
        "| " + " | ".join(parts) + " | total |",
        "|" + "---:|" * (len(parts) + 1),
        "| " + " | ".join(_n(per_part[p], digits) for p in parts) + f" | {_n(total, digits)} |",
        "",
        f"Largest shares: {_shares(per_part, total)}. With {cores} cores that total "
        f"alone caps the rate near {_n(cores * 1000 / total if total else math.nan)} "
        f"{rate}, before the load generator's own share and anything else running on the "
        "machine."
        + (
            " (RabbitMQ's figure is the whole broker's, so it includes any other vhost's "
            "traffic on a shared machine.)"
            if "rabbitmq" in parts
            else ""
        ),
        "",
    ]


def _shares(per_part: dict[str, float], total: float) -> str:
    top = sorted(per_part.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{name} {ms:.2f} ms ({ms / total:.0%})" for name, ms in top if total)


def _cpu_total(cpu: list[dict]) -> float:
    parts = {p for c in cpu for p in c}
    return sum(_part_median(cpu, p) for p in parts)


def _part_median(cpu: list[dict], part: str) -> float:
    """One part's CPU per unit of work, the median over the runs (0 where it was absent)."""
    return median([c.get(part, 0.0) for c in cpu])


def _profile(summaries: dict[str, dict], what: str) -> list[str]:
    """Where each profiled service spent its CPU during the extra profiled run."""
    if not summaries:
        return []
    lines = [
        f"py-spy of each service during one extra {what} run (not one of the timed "
        f"runs), reading each process from outside, {RATE} times a second, and keeping the "
        "samples where it held the GIL: so the shares are of CPU spent, not of waiting. "
        "Own samples (the innermost frame's, which includes the C it calls) by package, "
        "then the functions with the most:",
        "",
    ]
    for service, summary in summaries.items():
        groups = ", ".join(f"{name} {share:.0%}" for name, _, share in summary["groups"][:8])
        lines.append(
            f"- **{service}** ({summary['samples']:,} samples; {summary['cpu_seconds']:.1f} s"
            f" of CPU during the run): {groups}"
        )
        for where, _, share in summary["functions"][:5]:
            lines.append(f"  - {share:.0%} `{where}`")
    lines.append("")
    return lines


def _lag(data: dict, plan: dict, rows: list, sections: list) -> None:
    runs, baseline = data["runs"], data["baseline"]
    p50 = [x["p50_ms"] for x in runs]
    p99 = [x["p99_ms"] for x in runs]
    paced = [x["paced_per_second"] + 1 / PROBE_INTERVAL for x in runs]
    ok = median(p99) < LAG_GOAL_MS
    rows.append(f"| 3 | event lag p50, ms | {_n(median(p50))} | {_runs(p50)} | | |")
    rows.append(
        f"| 3 | event lag p99, ms | {_n(median(p99))} | {_runs(p99)} | < {LAG_GOAL_MS:.0f} "
        f"| {_verdict(ok)} |"
    )
    rows.append(
        f"| 3 | intake while measuring lag (wrk + probe), referrals/s | {_n(median(paced))} | "
        f"{_runs(paced)} | half the intake median | |"
    )
    rows.append(
        f"| 3 | event lag p50 / p99 with only the probe's 10 referrals/s, ms | "
        f"{_n(baseline['p50_ms'])} / {_n(baseline['p99_ms'])} | one run | | |"
    )
    probes = sum(x["probes"] for x in runs)
    unseen = sum(x["unseen"] for x in runs)
    sections.append(
        [
            "## 3. Event lag",
            "",
            f"While wrk paces intake through the gateway at half the intake median "
            f"({_n(runs[0]['target_per_second'])}/s asked for, the probe's 10/s included; "
            f"wrk on {PACED_CONNECTIONS} connections, each waiting a fixed pace between "
            "requests, so the rate reached is lower when latency is high, and is listed), "
            "a probe in the orchestrator posts one referral of its own every "
            f"100 ms, for {plan['lag_seconds']:.0f} s a run, in turn in fifty local "
            "authorities of its own (covered by the bench provider, so they are accepted "
            "like the load). A poller fetches `GET /v1/reports/performance?group_by="
            "local_authority` through the gateway as the programme office every 50 ms; a "
            "probe is visible once its authority's `referrals` reaches the number of probes "
            "posted there. Its lag runs from its `201` to the end of the first poll that "
            "showed it, so it includes up to one poll interval and the poll's own time (an "
            "upper bound). p50 and p99 are per run over its probes (~"
            f"{probes // max(len(runs), 1)} a run, so p99 is near each run's worst); "
            f"{probes} probes in all, {unseen} never seen within 15 s.",
            "",
            "The path measured: the referral's outbox row commits with the `201`; the relay, "
            "woken by NOTIFY, publishes `referrals.referral.status_changed`; reporting's "
            "consumer logs it and applies the rollup delta in one transaction.",
            "",
            "For comparison, one more run with only the probe's referrals (and wrk at "
            f"{_n(baseline['paced_per_second'], 1)}/s): p50 {_n(baseline['p50_ms'])} ms, "
            f"p99 {_n(baseline['p99_ms'])} ms: the pipeline's own latency, poll included. "
            "Before each run the orchestrator waits until the report counts every referral "
            "sent so far and no event waits in an outbox or queue.",
            "",
            "**What limits it.** " + _lag_limit(runs),
        ]
    )


def _lag_limit(runs: list[dict]) -> str:
    """Where the events waited during the runs, as sampled, and what that says limits
    the lag; summaries from before the sampling keep the note written from the design."""
    if not all("most_waiting" in x for x in runs):
        return LAG_NOTE
    most: dict[str, int] = {}
    for run in runs:
        for place, count in run["most_waiting"].items():
            most[place] = max(most.get(place, 0), count)
    seen = sorted(((n, p) for p, n in most.items() if n), reverse=True)
    pipeline = (
        "The probe-only run shows the pipeline itself (commit, NOTIFY, relay, broker, "
        "reporting's consumer, the poll) takes tens of milliseconds; under load the rest "
        "is time spent waiting. "
    )
    if not seen:
        return pipeline + (
            "No event was seen waiting in an outbox or a queue (sampled every "
            f"{SAMPLE_INTERVAL * 1000:.0f} ms), so the waits were shorter than that: the "
            "relay and the consumers kept up, and the lag is the batch ahead of a probe "
            "and one poll."
        )
    listed = ", ".join(f"{_place(p)} {n:,}" for n, p in seen)
    where = (
        f"The most events seen waiting at once, in any run (sampled every "
        f"{SAMPLE_INTERVAL * 1000:.0f} ms): {listed}. "
    )
    kind, _, service = seen[0][1].partition(":")
    if kind == "outbox":
        verdict = (
            f"Most waited in the {service} outbox, not in the consumers' queues: the relay is "
            f"what fell behind, not the consumers. It runs in the {service} process beside "
            "the requests that service answers, and each batch it publishes (claim, publish "
            "with confirms, mark, commit) is a handful of round trips that each wait their "
            "turn for the cores the intake is using. What limits it is those shared cores."
        )
    else:
        verdict = (
            f"Most waited in the {service} queue: its consumer is what fell behind. It takes "
            "whatever has arrived as one batch (up to 200 events, after a 10 ms linger) "
            "and applies it set-based, and it shares the cores with the intake. What "
            "limits it is those shared cores."
        )
    return pipeline + where + verdict


def _place(place: str) -> str:
    kind, _, service = place.partition(":")
    return f"the {service} {kind}"


LAG_NOTE = (
    "The probe-only run shows the pipeline itself (commit, NOTIFY, relay, broker, "
    "reporting's consumer, the poll) takes tens of milliseconds. Under load the rest is "
    "queueing: the consumers take whatever has arrived as one batch (up to 200 events, "
    "after a 10 ms linger) and apply referral status changes set-based, a fixed handful "
    "of statements a batch, so at half the burst rate they keep up and a probe waits at "
    "most for the batch ahead of it and one poll. What limits it is that the consumers "
    "share the two cores with the intake: nearer the sustained rate (row 2) the queue, "
    "and the lag with it, would grow for as long as the load lasts."
)


def _sessions(data: dict, plan: dict, cores: int, rows: list, sections: list) -> None:
    rates = [x["per_second"] for x in data["runs"]]
    ok = median(rates) >= SESSIONS_GOAL
    rows.append(
        f"| 4 | sessions sync: sessions/s through the gateway, {SESSION_BATCH:,}-item batches | "
        f"{_n(median(rates))} | {_runs(rates)} | ≥ {SESSIONS_GOAL:,} | {_verdict(ok)} |"
    )
    p50 = [x["p50_ms"] for x in data["runs"]]
    rows.append(f"| 4 | sessions sync: batch p50, ms | {_n(median(p50))} | {_runs(p50)} | | |")
    sections.append(
        [
            "## 4. Sessions sync",
            "",
            f"{data['participants']} participants are made through the gateway as partners "
            "make them (referred with the Jobcentre's key, attached with the provider's). "
            "Then `bench.sessions_sync`'s load generator, in its own process with every body "
            f"built before the clock starts, posts {plan['session_batches']} batches of "
            f"{SESSION_BATCH:,} new sessions a run to `POST /v1/sessions/bulk` through the "
            f"gateway with the provider's API key, {plan['session_concurrency']} batches in "
            "flight.",
            "",
            *(
                _cpu_table(data["cpu"], f"batch of {SESSION_BATCH:,}", "batches/s", 1, cores)
                if data.get("cpu")
                else []
            ),
            *_profile(data.get("profile", {}), "sessions sync"),
            "**What limits it.** "
            + (
                _sessions_budget(
                    data["cpu"],
                    cores,
                    rate=median(rates),
                    in_flight=plan["session_concurrency"],
                    batch_p50_ms=median(p50),
                )
                if data.get("cpu")
                else ""
            )
            + SESSIONS_NOTE,
        ]
    )


SESSIONS_NOTE = (
    f"casework does the per-item work: pydantic validates all {SESSION_BATCH:,} items from JSON "
    "(`validate_json`), `plan_session_sync` judges each against the participant's "
    "scope and what is stored, and one multi-row upsert goes to PostgreSQL; the "
    "gateway parses the ~300 KB body once more with orjson to charge the rate limit by "
    "items. Nearer the limit, casework's per-item validation would be next."
)


def _sessions_budget(
    cpu: list[dict], cores: int, *, rate: float, in_flight: int, batch_p50_ms: float
) -> str:
    """The CPU a batch may cost if the parts are to reach the goal on these cores, against
    what this run's batches cost, and, where the CPU would allow the goal but the run
    missed it, the load's own ceiling: derived, so a slower machine's run says so."""
    batches_per_second = SESSIONS_GOAL / SESSION_BATCH
    budget = cores * 1000 / batches_per_second
    spent = _cpu_total(cpu)
    within = spent <= budget
    if within and rate < SESSIONS_GOAL:
        ceiling = in_flight * SESSION_BATCH * 1000 / batch_p50_ms
        verdict = (
            "so the CPU alone would allow the goal, yet the run missed it: with "
            f"{in_flight} batches in flight each would have to finish within "
            f"{in_flight * 1000 / batches_per_second:.0f} ms, and the batch p50 was "
            f"{_n(batch_p50_ms)} ms, which caps the rate near {_n(ceiling)} sessions/s. A "
            "batch's time is its parts' CPU one after the other (the gateway, then casework, "
            "then PostgreSQL) plus its wait for the cores the other batches are using, so "
            "less CPU per batch is what would lift it"
        )
    elif spent <= budget / 2:
        verdict = "so the goal holds with room"
    elif within:
        verdict = "so the goal holds, with little room"
    else:
        verdict = "more than the budget, so the goal cannot hold while they share these cores"
    return (
        f"CPU per batch, summed over the parts above, against the goal's "
        f"{batches_per_second:.0f} batches a second ({SESSIONS_GOAL:,} sessions): on {cores} "
        f"cores the parts together may spend at most about {_n(budget)} ms per batch. In "
        f"this run they spent {_n(spent, 1)} ms, {spent / budget:.0%} of that, {verdict}. "
    )


def _scale(data: dict, plan: dict, rows: list, sections: list) -> None:
    sizes = [int(s) for s in data["timings"]]
    largest = str(max(sizes))
    first = str(min(sizes))
    goal_labels = [label for label, _, _ in REPORTS if "format=" not in label]
    worst = max(data["timings"][largest][label]["median"] for label in goal_labels)
    for label, _, _ in REPORTS:
        if label not in goal_labels:
            continue
        t = data["timings"][largest][label]
        growth = t["median"] / data["timings"][first][label]["median"]
        rows.append(
            f"| 5 | {label} at {int(largest):,}, ms | {_n(t['median'], 1)} "
            f"| p90 {_n(t['p90'], 1)}, best {_n(t['best'], 1)} (of {plan['report_runs']}) "
            f"| < {REPORT_GOAL_MS:.0f} | {_verdict(t['median'] < REPORT_GOAL_MS)} "
            f"(x{growth:.2f} from {int(first):,}) |"
        )
    s = [
        "## 5. Reports at scale",
        "",
        f"`bench.reports_at_scale` generates {' and '.join(f'{x:,}' for x in sizes)} "
        "participants with realistic histories (referrals over three years, ten local "
        "authorities, five providers, job starts, sustainments, ledger lines with "
        "reversals, barrier assessments) straight into the reporting projections (COPY; "
        "rollups summed with the service's own contribution rules), then times each "
        "report through the reporting service's HTTP handler in process, warm: three "
        f"calls, then {plan['report_runs']} timed; the figure is their median "
        "(p90 and best beside it). This ran after the platform was stopped, "
        f"taking {data['seconds'] / 60:.1f} minutes, most of it generating the data.",
        "",
        "| report | " + " | ".join(f"{s:,}: median / p90 / best" for s in sizes) + " | growth |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for label, _, _ in REPORTS:
        cells = []
        for size in sizes:
            t = data["timings"][str(size)][label]
            cells.append(f"{t['median']:.1f} / {t['p90']:.1f} / {t['best']:.1f}")
        growth = data["timings"][largest][label]["median"] / data["timings"][first][label]["median"]
        s.append(f"| {label} | " + " | ".join(cells) + f" | x{growth:.2f} |")
    s += ["", "| loading, seconds | " + " | ".join(f"{x['size']:,}" for x in data["loads"]) + " |"]
    s.append("|---|" + "---:|" * len(data["loads"]))
    for step in data["loads"][0]["seconds"]:
        s.append(
            f"| {step} | "
            + " | ".join(f"{x['seconds'].get(step, 0):.1f}" for x in data["loads"])
            + " |"
        )
    s += [
        "",
        "PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in data["pg"].items()) + ".",
        "",
        f"Slowest report at {int(largest):,} (median): {worst:.1f} ms.",
        "",
        "**How it grows, and what limits it.** "
        + SCALE_NOTE.format(first=f"{int(first):,}", last=f"{int(largest):,}"),
    ]
    sections.append(s)


SCALE_NOTE = (
    "The reports sum daily rollup rows (one per programme, group and business day), so "
    "their cost follows days x groups, not participants: from {first} to {last} the "
    "rollups barely grow (the same three years of days) and so do the times. "
    "`min_months_attached` adds an index-only range scan over the job starts near the "
    "cut-off, which does grow with the programme. What is left is fixed per-request "
    "cost: signing, validation, rendering JSON/CSV/XLSX."
)


def _rebuild(data: dict, rows: list, sections: list) -> None:
    rates = [x["per_second"] for x in data["runs"]]
    rows.append(
        f"| 6 | rebuild: events/s replayed by the reporting rebuild | {_n(median(rates))} "
        f"| {_runs(rates)} | (none set) | |"
    )
    events = data["runs"][0]["events"] if data["runs"] else 0
    python = [x.get("python_cpu_seconds", math.nan) for x in data["runs"]]
    walls = [x["seconds"] for x in data["runs"]]
    share = median(python) / median(walls) if walls else math.nan
    sections.append(
        [
            "## 6. Rebuild",
            "",
            f"`bench.reporting_events.histories` writes {data['participants_added']:,} "
            f"hand-style participant histories ({data['events_added']:,} events: referral "
            "statuses, attachments, claims, ledger lines, assessments) into the running "
            "platform's reporting event log, beside the events the stages above produced; "
            f"then `services.reporting.rebuild.rebuild` replays the whole log ({events:,} "
            "events) into fresh projections, once per run. The rate is events replayed / "
            "wall-clock seconds of the rebuild (facts upserted in batches of 5,000, "
            "participants' dates and groups derived, every contribution summed into the "
            "rollups, one transaction).",
            "",
            f"Python CPU in the rebuilding process: {_n(median(python), 1)} s of a "
            f"median {_n(median(walls), 1)} s rebuild ({_n(share * 100)}%); the rest is "
            "PostgreSQL's work and round trips.",
            "",
            "**What limits it.** " + REBUILD_NOTE,
        ]
    )


REBUILD_NOTE = (
    "The split above says which side dominates. The Python side parses and validates "
    "each event as an envelope and a payload and computes every participant's "
    "contribution; the PostgreSQL side is the batched fact upserts, deriving dates and "
    "groups, and writing the rollups, all in one transaction."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.render",
        description="Re-render RESULTS.md beside a RESULTS.json, without rerunning the benchmarks.",
    )
    parser.add_argument(
        "summary",
        nargs="?",
        type=Path,
        default=REPO / "bench" / "RESULTS.json",
        help="the RESULTS.json that `python -m bench` wrote (default: the committed one)",
    )
    args = parser.parse_args(argv)
    summary_path: Path = args.summary
    if summary_path.suffix != ".json":
        parser.error(f"{summary_path}: name the RESULTS.json to render from")
    try:
        summary = json.loads(summary_path.read_text())
    except OSError as error:
        parser.error(f"{summary_path}: cannot be read ({error.strerror})")
    except ValueError as error:
        parser.error(f"{summary_path}: is not JSON ({error})")
    # Rendered in full before the write, so a summary that is not one leaves the
    # existing RESULTS.md as it was.
    try:
        text = render(summary)
    except KeyError as error:
        parser.error(f"{summary_path}: is not a bench summary (it has no {error})")
    except (TypeError, AttributeError) as error:
        parser.error(f"{summary_path}: is not a bench summary ({error})")
    output = summary_path.with_suffix(".md")
    try:
        output.write_text(text)
    except OSError as error:
        parser.error(f"{output}: cannot be written ({error.strerror})")
    print(f"re-rendered {output} from {summary_path.name}")


if __name__ == "__main__":
    main()
