"""The simulator's own copy of the contract's arithmetic (it must not borrow the
services' code, or a mistake there would be "expected" too)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pathways.simulate.rules import (
    Span,
    add_months,
    age_band,
    age_on,
    covered_days,
    first_sustained_on,
    in_support_window,
    is_sustained,
    quarter_of,
    rate,
    sustainment_window,
)

D = date.fromisoformat


def test_rates_are_exact_fractions_rounded_half_up_to_four_places() -> None:
    assert rate(1, 8) == Decimal("0.1250")
    assert rate(1, 32) == Decimal("0.0313")  # 0.03125 rounds up, not to even
    assert rate(2, 3) == Decimal("0.6667")
    assert rate(1, 3) == Decimal("0.3333")
    assert rate(0, 5) == Decimal("0.0000")
    assert rate(5, 5) == Decimal("1.0000")
    assert rate(3, 0) is None


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    assert add_months(D("2024-01-31"), 1) == D("2024-02-29")
    assert add_months(D("2023-01-31"), 1) == D("2023-02-28")
    assert add_months(D("2024-03-15"), 24) == D("2026-03-15")
    assert add_months(D("2024-03-31"), -1) == D("2024-02-29")
    assert add_months(D("2024-12-01"), 1) == D("2025-01-01")


def test_ages_are_whole_years_and_bands_start_at_eighteen() -> None:
    assert age_on(D("2000-02-29"), D("2018-02-28")) == 17
    assert age_on(D("2000-02-29"), D("2018-03-01")) == 18
    assert age_on(D("1981-05-17"), D("2024-05-16")) == 42
    assert age_on(D("1981-05-17"), D("2024-05-17")) == 43
    assert [age_band(a) for a in (17, 18, 24, 25, 34, 35, 49, 50, 66)] == [
        None,
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-49",
        "35-49",
        "50+",
        "50+",
    ]
    assert quarter_of(D("2024-03-31")) == "2024-Q1"
    assert quarter_of(D("2024-10-01")) == "2024-Q4"


def test_covered_days_count_gaps_out_and_overlaps_once() -> None:
    start, end = D("2024-01-01"), D("2024-01-31")  # 30 days, 1..30 January
    assert covered_days([Span(D("2023-12-01"), None)], start, end) == 30
    assert covered_days([Span(D("2024-01-01"), D("2024-01-10"))], start, end) == 10
    gapped = [Span(D("2024-01-01"), D("2024-01-10")), Span(D("2024-01-21"), None)]
    assert covered_days(gapped, start, end) == 20
    overlapping = [Span(D("2024-01-01"), D("2024-01-20")), Span(D("2024-01-11"), D("2024-01-25"))]
    assert covered_days(overlapping, start, end) == 25
    assert covered_days([Span(D("2024-02-01"), None)], start, end) == 0
    assert covered_days([Span(D("2024-01-05"), D("2024-01-04"))], start, end) == 0


def test_sustainment_is_n_weeks_in_work_out_of_n_plus_four() -> None:
    job = D("2024-01-01")
    # The window ends before the earlier of the claim's date and the start + 54 weeks.
    assert sustainment_window(job, D("2026-01-01"), 50) == (job, job + timedelta(weeks=54))
    assert sustainment_window(job, D("2024-06-01"), 50) == (job, D("2024-06-01"))
    assert sustainment_window(job, D("2023-12-01"), 50) == (job, job)
    continuous = [Span(job, None)]
    assert is_sustained(continuous, job, job + timedelta(days=350), 50)
    assert not is_sustained(continuous, job, job + timedelta(days=349), 50)
    # A four-week gap still makes 50 of 54; one day more does not.
    four_weeks = [Span(job, D("2024-03-31")), Span(D("2024-04-29"), None)]
    assert is_sustained(four_weeks, job, job + timedelta(weeks=60), 50)
    too_long = [Span(job, D("2024-03-31")), Span(D("2024-04-30"), None)]
    assert not is_sustained(too_long, job, job + timedelta(weeks=60), 50)


def test_the_first_day_a_sustainment_claim_can_pass() -> None:
    job = D("2024-01-01")
    assert first_sustained_on([Span(job, None)], job, 13) == job + timedelta(days=91)
    gap = [Span(job, D("2024-01-31")), Span(D("2024-02-15"), None)]  # 14 days out of work
    assert first_sustained_on(gap, job, 13) == job + timedelta(days=91 + 14)
    assert first_sustained_on([Span(job, D("2024-02-01"))], job, 13) is None
    # Whatever it returns passes, and the day before does not.
    day = first_sustained_on(gap, job, 13)
    assert day is not None
    assert is_sustained(gap, job, day, 13)
    assert not is_sustained(gap, job, day - timedelta(days=1), 13)


def test_the_support_window_is_inclusive_at_both_ends() -> None:
    attached = D("2024-01-01")
    assert in_support_window(attached, attached, 104)
    assert in_support_window(attached, attached + timedelta(weeks=104), 104)
    assert not in_support_window(attached, attached + timedelta(weeks=104, days=1), 104)
    assert not in_support_window(attached, attached - timedelta(days=1), 104)
