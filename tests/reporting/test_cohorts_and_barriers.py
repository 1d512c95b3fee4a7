"""GET /v1/reports/cohorts and /v1/reports/barriers over hand-built programmes
(:func:`tests.reporting.programmes.cohort_story`, ``barrier_story``)."""

from __future__ import annotations

import pytest

from services.reporting.domain.facts import BARRIERS
from tests.reporting.programmes import barrier_story, cohort_story
from tests.reporting.story import Story, feed, get_report, office, reporting

N = None


@pytest.fixture(scope="module")
async def cohorts_fed(sandbox, apps) -> Story:
    story = cohort_story()
    await feed(sandbox, await reporting(apps), story.events)
    return story


@pytest.fixture(scope="module")
async def barriers_fed(sandbox, apps) -> Story:
    story = barrier_story()
    await feed(sandbox, await reporting(apps), story.events)
    return story


@pytest.fixture
async def client(apps):
    async with office(await reporting(apps)) as c:
        yield c


# --- cohorts ------------------------------------------------------------------------------


async def test_cohort_curves(cohorts_fed: Story, client) -> None:
    report = await get_report(client, "cohorts", cohorts_fed.code, as_of="2024-09-30")
    assert report["job_start_target"] == 0.2
    q1, q2 = report["cohorts"]  # F (Q4) is attached after as_of: no Q4 cohort yet
    assert all(len(c["job_start_rate_by_month"]) == 24 for c in report["cohorts"])
    # Q1: A (month 1: 31 Jan + 1 month = 29 Feb), B (month 2), C (month 4). The last
    # member, B, attached 31 Mar: + 6 months = 30 Sep is on as_of; + 7 is after -> null.
    assert q1 == {
        "cohort": "2024-Q1",
        "attachments": 3,
        "job_start_rate_by_month": [0.3333, 0.6667, 0.6667, 1.0, 1.0, 1.0] + [N] * 18,
    }
    # Q2: D (job start rejected) and E (month 1). E attached 30 Jun: + 3 months = 30 Sep.
    assert q2 == {
        "cohort": "2024-Q2",
        "attachments": 2,
        "job_start_rate_by_month": [0.5, 0.5, 0.5] + [N] * 21,
    }


async def test_partial_quarter_waits_for_its_latest_member(cohorts_fed: Story, client) -> None:
    report = await get_report(client, "cohorts", cohorts_fed.code, as_of="2024-05-20")
    q1, q2 = report["cohorts"]
    # Q1's last member attached 31 Mar: + 1 month = 30 Apr <= 20 May; + 2 = 31 May is not.
    assert q1["job_start_rate_by_month"] == [0.3333] + [N] * 23
    # Q2 so far is only D (30 Apr): + 1 month = 30 May, after as_of.
    assert q2 == {"cohort": "2024-Q2", "attachments": 1, "job_start_rate_by_month": [N] * 24}


async def test_cohorts_after_two_years_and_before_anything(cohorts_fed: Story, client) -> None:
    report = await get_report(client, "cohorts", cohorts_fed.code, as_of="2026-12-31")
    assert [c["cohort"] for c in report["cohorts"]] == ["2024-Q1", "2024-Q2", "2024-Q4"]
    assert report["cohorts"][0]["job_start_rate_by_month"][23] == 1.0
    assert report["cohorts"][2]["job_start_rate_by_month"] == [0.0] * 24
    empty = await get_report(client, "cohorts", cohorts_fed.code, as_of="2024-01-30")
    assert empty["cohorts"] == []


async def test_cohorts_suppression(cohorts_fed: Story, client) -> None:
    two = await get_report(
        client, "cohorts", cohorts_fed.code, as_of="2024-09-30", suppress_below=2
    )
    q1, q2 = two["cohorts"]
    # Numerators below 2 blank the month: Q1 month 1 rests on one job starter.
    assert q1["attachments"] == 3
    assert q1["job_start_rate_by_month"][:6] == [N, 0.6667, 0.6667, 1.0, 1.0, 1.0]
    assert q2["attachments"] == 2 and q2["job_start_rate_by_month"][:3] == [N, N, N]
    three = await get_report(
        client, "cohorts", cohorts_fed.code, as_of="2024-09-30", suppress_below=3
    )
    assert three["cohorts"][1] == {
        "cohort": "2024-Q2",
        "attachments": None,
        "job_start_rate_by_month": [N] * 24,
    }


# --- barriers -----------------------------------------------------------------------------


def rows_by_barrier(report: dict) -> dict[str, tuple]:
    return {
        r["barrier"]: (
            r["scored"],
            r["severe_at_attachment"],
            r["severe_share"],
            r["reviewed"],
            r["improved"],
            r["improved_rate"],
        )
        for r in report["rows"]
    }


async def test_barriers(barriers_fed: Story, client) -> None:
    report = await get_report(client, "barriers", barriers_fed.code, as_of="2024-12-31")
    got = rows_by_barrier(report)
    assert len(report["rows"]) == 20 and set(got) == set(BARRIERS)
    # mental_health: P1 5, P2 6, P3 2 -> 2 severe of 3; both reviewed (P2's latest is
    # its exit: 2); both improved. P4 has no initial assessment; P5 is attached after
    # as_of; P6's initial is dated after as_of.
    assert got["mental_health"] == (3, 2, 0.6667, 2, 2, 1.0)
    # physical_health 4 -> 4: reviewed, not improved.
    assert got["physical_health"] == (1, 1, 1.0, 1, 0, 0.0)
    assert got["confidence"] == (1, 1, 1.0, 1, 1, 1.0)
    # housing 4, latest review (the exit) 5: reviewed, worse.
    assert got["housing"] == (1, 1, 1.0, 1, 0, 0.0)
    # age 5 but never reviewed: improved_rate has no denominator.
    assert got["age"] == (1, 1, 1.0, 0, 0, None)
    assert got["debt"] == (1, 0, 0.0, 0, 0, None)
    assert got["childcare"] == (0, 0, None, 0, 0, None)
    order = [r["barrier"] for r in report["rows"]]
    assert order[:6] == ["age", "confidence", "housing", "physical_health", "mental_health", "debt"]
    assert order[6:] == sorted(set(BARRIERS) - set(order[:6]))
    # Means over P1 and P2 (P3 has no review): severe initially 3 and 2, at the latest
    # review 1 (P1: physical_health 4) and 1 (P2's exit: housing 5).
    assert report["mean_severe_at_attachment"] == 2.5
    assert report["mean_severe_at_latest_review"] == 1.0


async def test_barriers_latest_review_as_of(barriers_fed: Story, client) -> None:
    report = await get_report(client, "barriers", barriers_fed.code, as_of="2024-09-01")
    got = rows_by_barrier(report)
    # P2's latest review is now 1 Aug: mental_health 6 (not improved), housing unscored.
    assert got["mental_health"] == (3, 2, 0.6667, 2, 1, 0.5)
    assert got["housing"] == (1, 1, 1.0, 0, 0, None)
    assert report["mean_severe_at_attachment"] == 2.5
    assert report["mean_severe_at_latest_review"] == 1.0  # P1 1, P2 1 (mental_health 6)
    # Before any review, nobody has both: the means are null.
    early = await get_report(client, "barriers", barriers_fed.code, as_of="2024-05-01")
    assert rows_by_barrier(early)["mental_health"] == (3, 2, 0.6667, 0, 0, None)
    assert early["mean_severe_at_attachment"] is None
    assert early["mean_severe_at_latest_review"] is None


async def test_barriers_before_anything(barriers_fed: Story, client) -> None:
    report = await get_report(client, "barriers", barriers_fed.code, as_of="2024-01-09")
    assert [r["barrier"] for r in report["rows"]] == sorted(BARRIERS)
    assert all(r["scored"] == 0 and r["severe_share"] is None for r in report["rows"])
    assert report["mean_severe_at_attachment"] is None


async def test_barriers_suppression(barriers_fed: Story, client) -> None:
    two = await get_report(
        client, "barriers", barriers_fed.code, as_of="2024-12-31", suppress_below=2
    )
    got = rows_by_barrier(two)
    assert got["mental_health"] == (3, 2, 0.6667, 2, 2, 1.0)
    assert got["age"] == (None, None, None, None, None, None)
    assert two["mean_severe_at_attachment"] == 2.5  # over 2 participants: shown
    # With shares blanked, only mental_health has one to sort by.
    assert two["rows"][0]["barrier"] == "mental_health"
    three = await get_report(
        client, "barriers", barriers_fed.code, as_of="2024-12-31", suppress_below=3
    )
    assert rows_by_barrier(three)["mental_health"] == (3, None, None, None, None, None)
    assert three["mean_severe_at_attachment"] is None
    assert three["mean_severe_at_latest_review"] is None
