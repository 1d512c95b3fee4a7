"""Fetching the programme office's reports and comparing them, figure by figure, with
what the story says they must be.

Reports may lag the writes by a few seconds (contract §8): :func:`settle` polls until
every figure matches or the time allowed runs out, and returns the last reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pathways.simulate.client import Credentials, Gateway
from pathways.simulate.expected import GROUP_BY, PERFORMANCE_FIELDS, Expectations

BARRIER_FIELDS = (
    "scored",
    "severe_at_attachment",
    "severe_share",
    "reviewed",
    "improved",
    "improved_rate",
)


@dataclass(frozen=True)
class Mismatch:
    report: str  # performance, performance by <group>, cohorts, barriers
    key: str
    field: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return (
            f"{self.report} [{self.key}] {self.field}: expected {self.expected}, got {self.actual}"
        )


@dataclass
class Observed:
    performance: dict[str, dict[str, Any]]
    by_group: dict[str, dict[str, dict[str, Any]]]
    cohorts: dict[str, dict[str, Any]]
    barriers: dict[str, Any]


async def fetch_headline(
    gateway: Gateway, office: Credentials, programme: str, as_of: date
) -> dict[str, Any]:
    body = await gateway.call(
        office,
        "GET",
        "/v1/reports/performance",
        params={"programme": programme, "as_of": as_of.isoformat()},
    )
    return body["rows"][0]


async def fetch(gateway: Gateway, office: Credentials, programme: str, as_of: date) -> Observed:
    params = {"programme": programme, "as_of": as_of.isoformat()}

    async def performance(group: str | None) -> dict[str, dict[str, Any]]:
        extra = {"group_by": group} if group else {}
        body = await gateway.call(
            office, "GET", "/v1/reports/performance", params={**params, **extra}
        )
        return {row["key"]: row for row in body["rows"]}

    headline, cohorts, barriers, *groups = await asyncio.gather(
        performance(None),
        gateway.call(office, "GET", "/v1/reports/cohorts", params=params),
        gateway.call(office, "GET", "/v1/reports/barriers", params=params),
        *(performance(group) for group in GROUP_BY),
    )
    return Observed(
        performance=headline,
        by_group=dict(zip(GROUP_BY, groups, strict=True)),
        cohorts={c["cohort"]: c for c in cohorts["cohorts"]},
        barriers=barriers,
    )


def same(expected: Any, actual: Any) -> bool:
    """Counts compare exactly; a rate compares as the 4-place decimal it is."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, Decimal):
        return isinstance(actual, int | float | Decimal) and Decimal(str(actual)) == expected
    return bool(expected == actual) and type(actual) is not bool


def _rows(
    report: str,
    expected: dict[str, dict[str, Any]],
    actual: dict[str, dict[str, Any]],
    fields: tuple[str, ...],
) -> list[Mismatch]:
    out = []
    for key in sorted(expected.keys() | actual.keys()):
        if key not in actual:
            out.append(Mismatch(report, key, "(row)", "present", "missing"))
            continue
        if key not in expected:
            out.append(Mismatch(report, key, "(row)", "absent", "present"))
            continue
        for name in fields:
            if not same(expected[key].get(name), actual[key].get(name)):
                out.append(
                    Mismatch(report, key, name, expected[key].get(name), actual[key].get(name))
                )
    return out


def compare_headline(expected: Expectations, headline: dict[str, Any]) -> list[Mismatch]:
    return _rows("performance", expected.performance, {"all": headline}, PERFORMANCE_FIELDS)


def compare(expected: Expectations, observed: Observed) -> list[Mismatch]:
    out = _rows("performance", expected.performance, observed.performance, PERFORMANCE_FIELDS)
    for group in GROUP_BY:
        out += _rows(
            f"performance by {group}",
            expected.by_group[group],
            observed.by_group.get(group, {}),
            PERFORMANCE_FIELDS,
        )
    for key in sorted(expected.cohorts.keys() | observed.cohorts.keys()):
        want, got = expected.cohorts.get(key), observed.cohorts.get(key)
        if want is None or got is None:
            out.append(Mismatch("cohorts", key, "(row)", want is not None, got is not None))
            continue
        if not same(want["attachments"], got["attachments"]):
            out.append(
                Mismatch("cohorts", key, "attachments", want["attachments"], got["attachments"])
            )
        months = got.get("job_start_rate_by_month") or []
        if len(months) != len(want["job_start_rate_by_month"]):
            out.append(Mismatch("cohorts", key, "months", 24, len(months)))
            continue
        for m, (a, b) in enumerate(zip(want["job_start_rate_by_month"], months, strict=True), 1):
            if not same(a, b):
                out.append(Mismatch("cohorts", key, f"month {m}", a, b))
    want_rows = {r["barrier"]: r for r in expected.barriers["rows"]}
    got_rows = {r["barrier"]: r for r in observed.barriers.get("rows", [])}
    out += _rows("barriers", want_rows, got_rows, BARRIER_FIELDS)
    want_order = [r["barrier"] for r in expected.barriers["rows"]]
    got_order = [r["barrier"] for r in observed.barriers.get("rows", [])]
    if want_order != got_order:
        out.append(Mismatch("barriers", "rows", "order", want_order, got_order))
    for name in ("mean_severe_at_attachment", "mean_severe_at_latest_review"):
        if not same(expected.barriers[name], observed.barriers.get(name)):
            out.append(
                Mismatch(
                    "barriers", "means", name, expected.barriers[name], observed.barriers.get(name)
                )
            )
    return out


async def settle(
    gateway: Gateway,
    office: Credentials,
    programme: str,
    as_of: date,
    expected: Expectations,
    *,
    timeout: float,
    interval: float = 2.0,
    stable_for: float = 45.0,
    on_wait: Callable[[dict[str, Any], float], None] | None = None,
) -> tuple[Observed, list[Mismatch], float]:
    """Poll the reports until they match the story; give up when they have not changed
    for ``stable_for`` seconds (they have caught up, and differ) or after ``timeout``.

    Returns the last reading, its mismatches, and the seconds waited.
    """
    started = time.monotonic()
    last: Any = None
    unchanged_since = started
    while True:
        headline = await fetch_headline(gateway, office, programme, as_of)
        observed: Observed | None = None
        if compare_headline(expected, headline):
            # Still catching up. Assessments move the barriers report, not the headline:
            # watch both before deciding the reports have stopped changing.
            barriers = await gateway.call(
                office,
                "GET",
                "/v1/reports/barriers",
                params={"programme": programme, "as_of": as_of.isoformat()},
            )
            reading: Any = (headline, barriers)
        else:
            observed = await fetch(gateway, office, programme, as_of)
            mismatches = compare(expected, observed)
            if not mismatches:
                return observed, mismatches, time.monotonic() - started
            reading = observed
        now = time.monotonic()
        if reading != last:
            last, unchanged_since = reading, now
        if now - unchanged_since >= stable_for or now - started >= timeout:
            observed = observed or await fetch(gateway, office, programme, as_of)
            return observed, compare(expected, observed), time.monotonic() - started
        if on_wait is not None:
            on_wait(headline, now - started)
        await asyncio.sleep(interval)
