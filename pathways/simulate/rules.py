"""The partner contract's arithmetic, written out again from the contract's own words.

The simulator computes the figures it expects from its story with these functions, not
with the services' code: a figure the platform gets wrong cannot then be "expected"
by the same mistake. Everything here is a pure function of dates and integers.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

SEVERE_SCORE = 4  # scores 4, 5 and 6 count as severe (contract §3)
UK = ZoneInfo("Europe/London")


def uk_today() -> date:
    """Today as partners mean it: the UK date, whatever the machine's time zone."""
    return datetime.now(UK).date()


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months, the day clamped to the month's end (contract §6)."""
    index = day.year * 12 + day.month - 1 + months
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def quarter_of(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years completed on ``on`` (contract §2.1)."""
    return (
        on.year
        - date_of_birth.year
        - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    )


def age_band(age: int) -> str | None:
    """The performance report's bands (contract §6); none under 18."""
    if age < 18:
        return None
    if age <= 24:
        return "18-24"
    if age <= 34:
        return "25-34"
    if age <= 49:
        return "35-49"
    return "50+"


def rate(numerator: int, denominator: int) -> Decimal | None:
    """An exact fraction rounded half-up to 4 decimal places; ``None`` over zero (§6)."""
    if denominator == 0:
        return None
    scaled = (2 * numerator * 10_000 + denominator) // (2 * denominator)
    return Decimal(scaled).scaleb(-4)


# --- claims (contract §4) ---------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """An employment episode: ``ended_on`` is the last day in work, ``None`` ongoing."""

    started_on: date
    ended_on: date | None


def _in_work(spans: Iterable[Span], start: date, end: date) -> list[tuple[date, date]]:
    """The spans clipped to ``[start, end)`` as merged half-open ``[from, to)`` runs."""
    runs = []
    for span in spans:
        first = max(span.started_on, start)
        stop = end if span.ended_on is None else min(end, span.ended_on + timedelta(days=1))
        if first < stop:
            runs.append((first, stop))
    merged: list[tuple[date, date]] = []
    for first, stop in sorted(runs):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((first, stop))
    return merged


def covered_days(spans: Iterable[Span], start: date, end: date) -> int:
    """Days of ``[start, end)`` inside at least one span; overlaps count once."""
    return sum((stop - first).days for first, stop in _in_work(spans, start, end))


def sustainment_window(job_start_on: date, achieved_on: date, weeks: int) -> tuple[date, date]:
    """From the job start up to (not including) the earlier of the claim's date and the
    job start + (N+4) weeks: "N weeks in work out of N+4"."""
    end = min(achieved_on, job_start_on + timedelta(days=(weeks + 4) * 7))
    return job_start_on, max(end, job_start_on)


def is_sustained(spans: Iterable[Span], job_start_on: date, achieved_on: date, weeks: int) -> bool:
    start, end = sustainment_window(job_start_on, achieved_on, weeks)
    return covered_days(spans, start, end) >= weeks * 7


def first_sustained_on(spans: list[Span], job_start_on: date, weeks: int) -> date | None:
    """The earliest ``achieved_on`` a ``sustained_N`` claim could carry and pass, or
    ``None`` if the episodes never give N weeks in work out of N+4."""
    needed = weeks * 7
    cap = job_start_on + timedelta(days=(weeks + 4) * 7)
    for first, stop in _in_work(spans, job_start_on, cap):
        if needed <= (stop - first).days:
            # The needed-th day in work is first + needed - 1; the window must end after it.
            return first + timedelta(days=needed)
        needed -= (stop - first).days
    return None


def in_support_window(attached_on: date, achieved_on: date, support_weeks: int) -> bool:
    return attached_on <= achieved_on <= attached_on + timedelta(days=support_weeks * 7)


def sustained_weeks(claim_type: str) -> int | None:
    if claim_type.startswith("sustained_"):
        return int(claim_type.removeprefix("sustained_"))
    return None
