"""bench/RESULTS.md from the orchestrator's summary: figures first, then how each was
measured and what limits it."""

from __future__ import annotations

import math
from typing import Any

from bench.common import median
from bench.reports_at_scale import REPORTS

INTAKE_GOAL = 0.4
LAG_GOAL_MS = 1000.0
SESSIONS_GOAL = 20_000
REPORT_GOAL_MS = 300.0
CPU_PARTS = ("gateway", "referrals", "casework", "outcomes", "reporting", "postgresql", "rabbitmq")


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
    rows, sections = [], []
    if "intake" in r:
        _intake(r["intake"], plan, rows, sections)
    if "lag" in r:
        _lag(r["lag"], plan, rows, sections)
    if "sessions" in r:
        _sessions(r["sessions"], plan, rows, sections)
    if "scale" in r:
        _scale(r["scale"], plan, rows, sections)
    if "rebuild" in r:
        _rebuild(r["rebuild"], rows, sections)
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


def _intake(data: dict, plan: dict, rows: list, sections: list) -> None:
    floor = [x["per_second"] for x in data["floor"]]
    intake = [x["per_second"] for x in data["intake"]]
    ratio = median(intake) / median(floor) if floor and median(floor) else math.nan
    rows.append(
        f"| 1 | floor: referrals/s, bare FastAPI + one INSERT, c32 | {_n(median(floor))} "
        f"| {_runs(floor)} | (the reference) | |"
    )
    rows.append(
        f"| 2 | intake: referrals/s through the gateway, c32 | {_n(median(intake))} "
        f"| {_runs(intake)} | ≥ {INTAKE_GOAL} x floor | {_verdict(ratio >= INTAKE_GOAL)} |"
    )
    rows.append(
        f"| 2 | intake / floor | {_n(ratio, 2)} | | ≥ {INTAKE_GOAL} | "
        f"{_verdict(ratio >= INTAKE_GOAL)} |"
    )
    errors = sum(x["non_2xx"] + x["socket_errors"] for k in ("floor", "intake") for x in data[k])
    if errors:
        rows.append(f"| 1-2 | failed requests (non-2xx or socket errors) | {errors} | | 0 | |")
    for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
        for kind in ("floor", "intake"):
            values = [x[key] for x in data[kind]]
            rows.append(
                f"| {1 if kind == 'floor' else 2} | {kind} latency {label}, ms | "
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
        "no authentication, no events. Intake goes through the gateway with a Jobcentre "
        "API key (authentication, authorization, rate limit, audit, signed forwarding) to "
        "the referrals service, whose outbox relay publishes to RabbitMQ and whose events "
        "casework and reporting consume meanwhile. Floor and intake alternate run by run. "
        "The platform runs as `make run` starts it, with database pools of 8 (+8 overflow) "
        "for referrals and casework, 4 for the gateway (the floor's pool is 10), and rate "
        "limits raised out of reach.",
        "",
    ]
    if data.get("cpu"):
        s += _cpu_table(data["cpu"], "referral", "referrals/s", 2)
    s += _profile(data.get("profile", {}), "intake")
    s += ["**What limits it.** " + INTAKE_NOTE]
    sections.append(s)


INTAKE_NOTE = (
    "Every part runs in Python on the same two cores, so the ceiling is the CPU summed "
    "over the parts above: one referral costs the gateway (key lookup, audit, signing, "
    "a second HTTP hop), the referrals service (validation, person locks, duplicate "
    "lookup, insert, three outbox events), the consumers in casework and reporting, and "
    "PostgreSQL's work for all of them, where the floor pays for validation and one "
    "INSERT only."
)


def _cpu_table(cpu: list[dict], unit: str, rate: str, digits: int) -> list[str]:
    """CPU per unit of work by part (median of the runs), and the ceiling it implies."""
    parts = [p for p in CPU_PARTS if any(p in c for c in cpu)]
    per_part = {p: median([c.get(p, 0.0) for c in cpu]) for p in parts}
    total = sum(per_part.values())
    return [
        f"CPU per {unit} during the timed runs (ms, median of the runs; from /proc: each "
        "service process, the sandbox's PostgreSQL backends, RabbitMQ):",
        "",
        "| " + " | ".join(parts) + " | total |",
        "|" + "---:|" * (len(parts) + 1),
        "| " + " | ".join(_n(per_part[p], digits) for p in parts) + f" | {_n(total, digits)} |",
        "",
        f"With {_cores()} cores that total alone caps the rate near "
        f"{_n(_cores() * 1000 / total if total else math.nan)} {rate}, before the load "
        "generator's own share and anything else running on the machine.",
        "",
    ]


def _profile(summaries: dict[str, dict], what: str) -> list[str]:
    """Where each profiled service spent its own time during the extra profiled run."""
    if not summaries:
        return []
    lines = [
        f"cProfile of each service during one extra {what} run (not one of the timed "
        "runs: cProfile slows Python down), own time by package, then the functions with "
        "the most own time:",
        "",
    ]
    for service, summary in summaries.items():
        groups = ", ".join(f"{name} {share:.0%}" for name, _, share in summary["groups"][:8])
        lines.append(f"- **{service}** ({summary['seconds']:.1f} s profiled): {groups}")
        for where, _, share, calls in summary["functions"][:5]:
            lines.append(f"  - {share:.0%} `{where}` ({calls:,} calls)")
    lines.append("")
    return lines


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _lag(runs: list[dict], plan: dict, rows: list, sections: list) -> None:
    p50 = [x["p50_ms"] for x in runs]
    p99 = [x["p99_ms"] for x in runs]
    paced = [x["paced_per_second"] for x in runs]
    ok = median(p99) < LAG_GOAL_MS
    rows.append(f"| 3 | event lag p50, ms | {_n(median(p50))} | {_runs(p50)} | | |")
    rows.append(
        f"| 3 | event lag p99, ms | {_n(median(p99))} | {_runs(p99)} | < {LAG_GOAL_MS:.0f} "
        f"| {_verdict(ok)} |"
    )
    rows.append(
        f"| 3 | intake while measuring lag, referrals/s | {_n(median(paced))} | "
        f"{_runs(paced)} | half the intake median | |"
    )
    probes = sum(x["probes"] for x in runs)
    unseen = sum(x["unseen"] for x in runs)
    sections.append(
        [
            "## 3. Event lag",
            "",
            f"While wrk paces intake through the gateway at half the intake median "
            f"({_n(runs[0]['target_per_second'])}/s asked for; 8 connections, each waiting a "
            "fixed pace between requests, so the rate reached is a little lower and is "
            f"listed), a probe in the orchestrator posts one referral of its own every "
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
            "**What limits it.** " + LAG_NOTE,
        ]
    )


LAG_NOTE = (
    "The events queue behind the intake load on the same two cores: the lag is mostly "
    "the time the relay and reporting's consumer wait for CPU, one event per "
    "transaction on the consumer's side."
)


def _sessions(data: dict, plan: dict, rows: list, sections: list) -> None:
    rates = [x["per_second"] for x in data["runs"]]
    ok = median(rates) >= SESSIONS_GOAL
    rows.append(
        f"| 4 | sessions sync: sessions/s through the gateway, 1,000-item batches | "
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
            f"built before the clock starts, posts {plan['session_batches']} batches of 1,000 "
            f"new sessions a run to `POST /v1/sessions/bulk` through the gateway with the "
            f"provider's API key, {plan['session_concurrency']} batches in flight.",
            "",
            *(_cpu_table(data["cpu"], "batch of 1,000", "batches/s", 1) if data.get("cpu") else []),
            *_profile(data.get("profile", {}), "sessions sync"),
            "**What limits it.** " + SESSIONS_NOTE,
        ]
    )


SESSIONS_NOTE = (
    "A batch is one ~300 KB JSON body parsed twice (the gateway reads it whole to "
    "count the items against the rate limit, casework validates all 1,000 items) and "
    "one multi-row upsert; the service's Python CPU per batch, not PostgreSQL, bounds "
    "the rate (bench/results/sessions_sync.md measures the split straight against "
    "casework)."
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
        "**How it grows, and what limits it.** " + SCALE_NOTE,
    ]
    sections.append(s)


SCALE_NOTE = (
    "The reports sum daily rollup rows (one per programme, group and business day), so "
    "their cost follows days x groups, not participants: from 100,000 to 1,000,000 the "
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
            "**What limits it.** " + REBUILD_NOTE,
        ]
    )


REBUILD_NOTE = (
    "Python: each event is parsed and validated as an envelope and a payload, and every "
    "participant's contribution is computed in the process; PostgreSQL's share (batched "
    "upserts, the rollup COPY) is the smaller part."
)
