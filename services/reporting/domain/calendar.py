"""Business-date arithmetic shared by every report (contract §6)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day clamped to the target month's end
    (31 January + 1 month = 28/29 February). ``months`` may be negative."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def latest_attachment_for(as_of: date, months: int) -> date:
    """The latest ``attached_on`` whose ``attached_on + months`` (clamped) is on or before
    ``as_of``: ``min_months_attached`` becomes one cut-off date.

    Adding months is monotone, so the qualifying dates are exactly those on or before
    this one. Subtracting months alone is not enough: with ``as_of`` = 29 February, 30
    and 31 January qualify too (both + 1 month clamp to 29 February).
    """
    if months <= 0:
        return as_of
    candidate = add_months(as_of, -months)
    while add_months(candidate + timedelta(days=1), months) <= as_of:
        candidate += timedelta(days=1)
    return candidate


def quarter_of(day: date) -> str:
    """Calendar quarter label, ``2024-Q1``."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def months_to_job_start(attached_on: date, job_start_on: date, horizon: int = 24) -> int:
    """The first month ``m`` (1-based) with ``job_start_on <= attached_on + m months``, or
    0 when that is beyond ``horizon`` months (the cohort curves' last entry)."""
    months = (job_start_on.year - attached_on.year) * 12 + (job_start_on.month - attached_on.month)
    # attached_on + months lands in the job start's month; if its (clamped) day is before
    # the start, one more month is needed. It can never be that one month less suffices.
    if months > horizon:
        return 0
    if add_months(attached_on, months) < job_start_on:
        months += 1
    months = max(months, 1)
    return months if months <= horizon else 0


def days_before(day: date, days: int) -> date | None:
    """``day - days``, or ``None`` when that falls before the calendar begins."""
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return None
