"""What the simulator prints: the story's expected figures next to the reporting API's,
the evaluation report's own figures for context, and how the run went."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from pathways.simulate.compare import Mismatch, Observed, same
from pathways.simulate.expected import Expectations
from pathways.simulate.runner import RunResult
from pathways.simulate.story import Story

OK = "[green]✓[/]"
BAD = "[bold red]✗[/]"

# The Working Well Expansion's published figures (SQW 4th annual report, 2018).
REPORTED = {
    "referrals": "24,600+ (¶3.2)",
    "attachments": "17,100 (¶3.2)",
    "job_start_rate": "20% (¶3.16)",
    "sustainment_rate": "44% (¶3.18)",
}
TABLE_3_2 = {
    "confidence": "27% / 75%",
    "work_experience": "26% / 77%",
    "private_transport": "25% / 73%",
    "qualifications_skills": "23% / 82%",
    "physical_health": "20% / 67%",
    "mental_health": "20% / 74%",
}
HEADLINE = (
    ("referrals", "Referrals (not duplicates)"),
    ("accepted", "Accepted"),
    ("attachments", "Attachments"),
    ("attachment_rate", "Attachment rate (of accepted)"),
    ("job_starts", "Job starts (validated)"),
    ("job_start_rate", "Job start rate"),
    ("sustained", "Sustained 50 weeks"),
    ("sustainment_eligible", "Sustainment eligible"),
    ("sustainment_rate", "Sustainment rate"),
    ("accrued_pence", "Accrued"),
)


def fmt(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if field.endswith("_pence"):
        return f"£{Decimal(value) / 100:,.2f}"
    if field == "mean":
        return f"{Decimal(str(value)):.4f}"
    if field.endswith("rate") or field.endswith("share") or isinstance(value, Decimal | float):
        return f"{Decimal(str(value)) * 100:.2f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def mark(ok: bool) -> str:
    return OK if ok else BAD


def cell(field: str, expected: Any, actual: Any) -> str:
    if same(expected, actual):
        return fmt(field, actual)
    return f"[red]{fmt(field, expected)} → {fmt(field, actual)}[/]"


def headline_table(expected: Expectations, observed: Observed) -> Table:
    want = expected.performance["all"]
    got = observed.performance.get("all", {})
    table = Table(title="Headline figures", title_justify="left")
    table.add_column("Figure")
    table.add_column("Working Well report", style="dim")
    table.add_column("Story expects", justify="right")
    table.add_column("Reporting API", justify="right")
    table.add_column("")
    for name, label in HEADLINE:
        table.add_row(
            label,
            REPORTED.get(name, ""),
            fmt(name, want[name]),
            fmt(name, got.get(name)),
            mark(same(want[name], got.get(name))),
        )
    per_referral = _ratio(want["attachments"], want["referrals"])
    api_per_referral = _ratio(got.get("attachments"), got.get("referrals"))
    table.add_row(
        "Attachments per referral",
        "69% (¶3.2)",
        fmt("rate", per_referral),
        fmt("rate", api_per_referral),
        mark(same(per_referral, api_per_referral)),
    )
    return table


def _ratio(numerator: int | None, denominator: int | None) -> Decimal | None:
    from pathways.simulate.rules import rate

    if numerator is None or not denominator:
        return None
    return rate(numerator, denominator)


def area_table(expected: Expectations, observed: Observed) -> Table:
    want = expected.by_group["local_authority"]
    got = observed.by_group.get("local_authority", {})
    fields = (
        "referrals",
        "attachments",
        "job_starts",
        "job_start_rate",
        "sustained",
        "sustainment_rate",
        "accrued_pence",
    )
    table = Table(
        title="By local authority (API figures; expected → API where they differ)",
        title_justify="left",
    )
    table.add_column("Local authority")
    for name in fields:
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("")
    for key in sorted(want.keys() | got.keys()):
        w, g = want.get(key, {}), got.get(key, {})
        cells = [cell(name, w.get(name), g.get(name)) for name in fields]
        whole = bool(w) and bool(g) and all(same(w[n], g.get(n)) for n in w)
        table.add_row(key, *cells, mark(whole))
    return table


def cohort_table(expected: Expectations, observed: Observed) -> Table:
    months = (3, 6, 12, 18, 24)
    table = Table(
        title="Cohorts: share with a job start within m months of attachment", title_justify="left"
    )
    table.add_column("Attached in")
    table.add_column("attachments", justify="right")
    for m in months:
        table.add_column(f"m{m}", justify="right")
    table.add_column("")
    for key in sorted(expected.cohorts.keys() | observed.cohorts.keys()):
        w = expected.cohorts.get(key, {"attachments": None, "job_start_rate_by_month": [None] * 24})
        g = observed.cohorts.get(key, {"attachments": None, "job_start_rate_by_month": [None] * 24})
        wm, gm = w["job_start_rate_by_month"], g.get("job_start_rate_by_month") or [None] * 24
        whole = same(w["attachments"], g["attachments"]) and all(
            same(a, b) for a, b in zip(wm, gm, strict=False)
        )
        table.add_row(
            key,
            cell("attachments", w["attachments"], g["attachments"]),
            *(cell("rate", wm[m - 1], gm[m - 1]) for m in months),
            mark(whole),
        )
    return table


def barrier_table(expected: Expectations, observed: Observed) -> Table:
    want = {r["barrier"]: r for r in expected.barriers["rows"]}
    got = {r["barrier"]: r for r in observed.barriers.get("rows", [])}
    table = Table(
        title="Most common severe barriers at attachment, and improvement", title_justify="left"
    )
    table.add_column("Barrier")
    table.add_column("Table 3-2 severe / improved", style="dim")
    for name in ("scored", "severe_at_attachment", "severe_share", "reviewed", "improved_rate"):
        table.add_column(name.replace("_", " "), justify="right")
    table.add_column("")
    for row in expected.barriers["rows"][:8]:
        key = row["barrier"]
        g = got.get(key, {})
        fields = ("scored", "severe_at_attachment", "severe_share", "reviewed", "improved_rate")
        whole = all(same(want[key][n], g.get(n)) for n in want[key] if n != "barrier")
        table.add_row(
            key.replace("_", " "),
            TABLE_3_2.get(key, ""),
            *(cell(n, want[key][n], g.get(n)) for n in fields),
            mark(whole),
        )
    means = ("mean_severe_at_attachment", "mean_severe_at_latest_review")
    ok = all(same(expected.barriers[n], observed.barriers.get(n)) for n in means)
    table.add_row(
        "mean severe barriers",
        "2.7 → 1.7 (¶3.24)",
        "",
        "",
        " → ".join(cell("mean", expected.barriers[n], observed.barriers.get(n)) for n in means),
        "",
        "",
        mark(ok),
    )
    return table


def run_table(result: RunResult, gateway_stats: Any) -> Table:
    table = Table(title="The run", title_justify="left")
    table.add_column("Step")
    table.add_column("items", justify="right")
    table.add_column("seconds", justify="right")
    for name, units, seconds in result.phases:
        # Session syncs run alongside the casework: their time overlaps it.
        overlap = " (alongside casework)" if name.startswith("session syncs") else ""
        table.add_row(name + overlap, f"{units:,}", f"{seconds:,.1f}")
    statuses = gateway_stats.by_status()
    table.add_row(
        "[bold]all calls[/]",
        f"{gateway_stats.total:,}",
        f"{result.seconds:,.1f}",
    )
    table.caption = (
        "answers: "
        + ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items()))
        + f"; waits on 429: {gateway_stats.rate_limited:,}; retries: {gateway_stats.retries:,}"
        + f"; attachments retried while casework caught up: {result.lag_retries:,}"
    )
    return table


def print_story(console: Console, story: Story) -> None:
    t = story.timeline
    sessions = sum(len(batch) for batches in story.syncs.values() for batch in batches)
    claims = sum(len(p.claims) for p in story.participants)
    console.print(
        f"Story: {story.people:,} people (seed {story.seed}), referrals "
        f"{t.first_referral_day} to {t.last_referral_day}, figures as of {t.as_of}: "
        f"{len(story.referrals):,} referrals, {len(story.participants):,} attachments, "
        f"{sessions:,} session sync items, {claims:,} outcome claims."
    )


def print_results(
    console: Console,
    story: Story,
    expected: Expectations,
    observed: Observed,
    mismatches: list[Mismatch],
    result: RunResult,
    gateway_stats: Any,
) -> None:
    console.print()
    console.print(run_table(result, gateway_stats))
    console.print()
    console.print(headline_table(expected, observed))
    console.print(area_table(expected, observed))
    console.print(cohort_table(expected, observed))
    console.print(barrier_table(expected, observed))
    if result.sync_counts:
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(result.sync_counts.items()))
        if any(f.step == "session sync" for f in result.failures):
            console.print(f"Session syncs: {counts}")
        else:
            console.print(f"Session syncs: {counts} (every item's status as the story predicted)")
    _print_problems(console, "Steps that did not go as the story says", result.failures)
    _print_problems(console, "Figures that differ", mismatches)


def _print_problems(console: Console, title: str, problems: Iterable[Any], limit: int = 25) -> None:
    problems = list(problems)
    if not problems:
        return
    console.print(f"\n[bold red]{title}: {len(problems):,}[/]")
    for problem in problems[:limit]:
        if isinstance(problem, Mismatch):
            console.print(f"  {problem}")
        else:
            console.print(f"  {problem.step} [{problem.subject}]: {problem.message}")
    if len(problems) > limit:
        console.print(f"  ... and {len(problems) - limit:,} more")
