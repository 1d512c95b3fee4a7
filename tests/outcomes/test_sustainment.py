"""The "50 weeks in work out of 54" count (contract §4 ``not_sustained``): worked examples
and properties over gapped, overlapping and open-ended employment episodes."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.outcomes.domain import covered_days, sustainment_window

BASE = date(2024, 1, 1)
Span = tuple[date, date | None]


def day(n: int) -> date:
    return BASE + timedelta(days=n)


# --- worked examples ------------------------------------------------------------------


def test_one_ongoing_job_covers_the_whole_window() -> None:
    assert covered_days([(day(0), None)], day(0), day(378)) == 378


def test_end_date_is_the_last_day_in_work_inclusive() -> None:
    assert covered_days([(day(0), day(0))], day(0), day(10)) == 1
    assert covered_days([(day(0), day(9))], day(0), day(10)) == 10


def test_days_outside_the_window_do_not_count() -> None:
    spans = [(day(-30), day(4)), (day(8), day(40))]
    assert covered_days(spans, day(0), day(10)) == 5 + 2


def test_overlaps_count_once() -> None:
    spans = [(day(0), day(19)), (day(10), day(29)), (day(5), day(6))]
    assert covered_days(spans, day(0), day(100)) == 30


def test_gaps_are_not_counted() -> None:
    spans = [(day(0), day(9)), (day(20), day(29))]
    assert covered_days(spans, day(0), day(30)) == 20


def test_an_episode_ending_before_it_starts_counts_nothing() -> None:
    assert covered_days([(day(10), day(5))], day(0), day(30)) == 0


def test_an_empty_window_covers_nothing() -> None:
    assert covered_days([(day(0), None)], day(5), day(5)) == 0


def test_window_runs_to_the_earlier_of_claim_date_and_n_plus_4_weeks() -> None:
    start = date(2024, 3, 1)
    assert sustainment_window(start, start + timedelta(weeks=60), 50) == (
        start,
        start + timedelta(weeks=54),
    )
    assert sustainment_window(start, start + timedelta(weeks=51), 50) == (
        start,
        start + timedelta(weeks=51),
    )
    # A claim dated before its job start has nothing to measure.
    assert sustainment_window(start, start - timedelta(days=3), 13) == (start, start)


def test_fifty_weeks_out_of_fifty_four() -> None:
    start = date(2024, 4, 1)
    window = sustainment_window(start, start + timedelta(weeks=54), 50)
    # Four weeks out of work in the middle: exactly 50 weeks in.
    spans = [
        (start, start + timedelta(weeks=10, days=-1)),
        (start + timedelta(weeks=14), None),
    ]
    assert covered_days(spans, *window) == 350
    # One more day out: 349, not sustained.
    spans[1] = (start + timedelta(weeks=14, days=1), None)
    assert covered_days(spans, *window) == 349


# --- properties ---------------------------------------------------------------------------

offsets = st.integers(min_value=-60, max_value=420)


@st.composite
def spans(draw) -> Span:
    start = draw(offsets)
    kind = draw(st.sampled_from(["closed", "open", "backwards"]))
    if kind == "open":
        return day(start), None
    length = draw(st.integers(min_value=0, max_value=200))
    end = start + length if kind == "closed" else start - length - 1
    return day(start), day(end)


@st.composite
def windows(draw) -> tuple[date, date]:
    start = draw(st.integers(min_value=-10, max_value=100))
    length = draw(st.integers(min_value=0, max_value=400))
    return day(start), day(start + length)


episode_lists = st.lists(spans(), max_size=8)


def brute_force(episodes: list[Span], window_start: date, window_end: date) -> int:
    count = 0
    current = window_start
    while current < window_end:
        if any(s <= current and (e is None or current <= e) for s, e in episodes):
            count += 1
        current += timedelta(days=1)
    return count


@settings(max_examples=300, deadline=None)
@given(episode_lists, windows())
def test_matches_counting_day_by_day(episodes, window) -> None:
    assert covered_days(episodes, *window) == brute_force(episodes, *window)


@settings(deadline=None)
@given(episode_lists, windows())
def test_never_more_than_the_window_nor_negative(episodes, window) -> None:
    covered = covered_days(episodes, *window)
    assert 0 <= covered <= (window[1] - window[0]).days


@settings(deadline=None)
@given(episode_lists, windows(), st.randoms(use_true_random=False))
def test_order_of_episodes_is_irrelevant(episodes, window, rng) -> None:
    shuffled = list(episodes)
    rng.shuffle(shuffled)
    assert covered_days(shuffled, *window) == covered_days(episodes, *window)


@settings(deadline=None)
@given(episode_lists, spans(), windows())
def test_adding_an_episode_never_reduces_covered_days(episodes, extra, window) -> None:
    assert covered_days([*episodes, extra], *window) >= covered_days(episodes, *window)


@settings(deadline=None)
@given(episode_lists, windows())
def test_repeating_episodes_changes_nothing(episodes, window) -> None:
    assert covered_days(episodes + episodes, *window) == covered_days(episodes, *window)


@settings(deadline=None)
@given(
    episode_lists,
    st.integers(min_value=-30, max_value=300),
    st.integers(min_value=1, max_value=200),
    st.data(),
    windows(),
)
def test_splitting_an_episode_into_adjacent_ones_changes_nothing(
    episodes, start, length, data, window
) -> None:
    whole = (day(start), day(start + length))
    cut = data.draw(st.integers(min_value=start, max_value=start + length - 1))
    halves = [(day(start), day(cut)), (day(cut + 1), day(start + length))]
    assert covered_days([*episodes, *halves], *window) == covered_days([*episodes, whole], *window)


@settings(deadline=None)
@given(episode_lists, st.integers(min_value=-30, max_value=300), windows())
def test_an_open_episode_counts_like_one_ending_after_the_window(episodes, start, window) -> None:
    late_end = window[1] + timedelta(days=30)
    assert covered_days([*episodes, (day(start), None)], *window) == covered_days(
        [*episodes, (day(start), late_end)], *window
    )


@settings(deadline=None)
@given(
    st.integers(min_value=0, max_value=200),
    st.sampled_from([13, 26, 50]),
    st.integers(min_value=-20, max_value=500),
)
def test_the_window_never_exceeds_n_plus_4_weeks(start, weeks, claimed_after) -> None:
    job_start = day(start)
    window = sustainment_window(job_start, job_start + timedelta(days=claimed_after), weeks)
    assert window[0] == job_start
    assert 0 <= (window[1] - window[0]).days <= (weeks + 4) * 7
