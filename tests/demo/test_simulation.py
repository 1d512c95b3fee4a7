"""A small simulated programme played through the real platform (every service a
process behind the real gateway): the reporting API must say exactly what the story
implies, figure for figure."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from pathways.simulate.compare import same
from pathways.simulate.expected import GROUP_BY
from pathways.simulate.main import Options, Outcome, dashboard_url, simulate
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform

PEOPLE = 200
PRINTOUT = Path(__file__).resolve().parents[1] / "artifacts" / "demo-simulation.txt"


@pytest.fixture(scope="module")
async def outcome(platform: RunningPlatform) -> Outcome:
    # The simulator's own printout is kept as an artifact: what a commissioner would see.
    PRINTOUT.parent.mkdir(parents=True, exist_ok=True)
    with PRINTOUT.open("w") as out:
        console = Console(file=out, width=160, force_terminal=False)
        return await simulate(
            Options(
                gateway_url=platform.gateway_url,
                admin_token=platform.admin_token,
                people=PEOPLE,
                seed=11,
                progress=False,
                report_timeout=60,
            ),
            console,
        )


def test_every_step_went_as_the_story_says(outcome: Outcome) -> None:
    # Each referral's decision, each claim's decision, each sync item's status and each
    # refused mistake (422/404/409) was checked as the run went; none differed.
    assert outcome.result.failures == []
    platform = outcome.result.platform
    assert len(platform.referrals) == len(outcome.story.referrals)
    assert len(platform.participants) == len(outcome.story.participants)
    assert len(platform.claims) == sum(len(p.claims) for p in outcome.story.participants)
    expected_sync = sum(len(b) for batches in outcome.story.syncs.values() for b in batches)
    assert sum(outcome.result.sync_counts.values()) == expected_sync


def test_the_headline_figures_equal_the_story(outcome: Outcome) -> None:
    want = outcome.expected.performance["all"]
    got = outcome.observed.performance["all"]
    assert got["referrals"] == want["referrals"] > 0
    assert got["accepted"] == want["accepted"] > 0
    assert got["attachments"] == want["attachments"] > 0
    assert got["job_starts"] == want["job_starts"] > 0
    assert got["sustained"] == want["sustained"] > 0
    assert got["sustainment_eligible"] == want["sustainment_eligible"] > 0
    assert got["accrued_pence"] == want["accrued_pence"] > 0
    for rate in ("attachment_rate", "job_start_rate", "sustainment_rate"):
        assert Decimal(str(got[rate])) == want[rate], rate


@pytest.mark.parametrize("group", GROUP_BY)
def test_every_grouping_of_the_performance_report_equals_the_story(
    outcome: Outcome, group: str
) -> None:
    want = outcome.expected.by_group[group]
    got = outcome.observed.by_group[group]
    assert set(got) == set(want) and want
    for key, row in want.items():
        for name, value in row.items():
            assert same(value, got[key][name]), (group, key, name, value, got[key][name])


def test_by_local_authority_includes_the_areas_no_provider_covers(outcome: Outcome) -> None:
    rows = outcome.observed.by_group["local_authority"]
    outside = [r for r in rows.values() if r["accepted"] == 0]
    assert outside, "the story refers people from outside the programme's areas"
    assert all(r["attachments"] == 0 and r["attachment_rate"] is None for r in outside)


def test_the_cohorts_equal_the_story(outcome: Outcome) -> None:
    want, got = outcome.expected.cohorts, outcome.observed.cohorts
    assert list(got) == list(want)  # oldest first
    for cohort, row in want.items():
        assert got[cohort]["attachments"] == row["attachments"]
        months = got[cohort]["job_start_rate_by_month"]
        assert len(months) == 24
        for m, value in enumerate(row["job_start_rate_by_month"], 1):
            assert same(value, months[m - 1]), (cohort, m)
        # Every cohort has had its 24 months by as_of: no entry is null.
        assert None not in months


def test_the_barriers_report_equals_the_story(outcome: Outcome) -> None:
    want, got = outcome.expected.barriers, outcome.observed.barriers
    assert [r["barrier"] for r in got["rows"]] == [r["barrier"] for r in want["rows"]]
    for expected_row, row in zip(want["rows"], got["rows"], strict=True):
        for name in ("scored", "severe_at_attachment", "reviewed", "improved"):
            assert row[name] == expected_row[name], (row["barrier"], name)
        assert same(expected_row["severe_share"], row["severe_share"])
        assert same(expected_row["improved_rate"], row["improved_rate"])
    assert same(want["mean_severe_at_attachment"], got["mean_severe_at_attachment"])
    assert same(want["mean_severe_at_latest_review"], got["mean_severe_at_latest_review"])


def test_nothing_differs_and_the_demo_says_so(outcome: Outcome) -> None:
    assert outcome.mismatches == []
    assert outcome.ok
    printed = PRINTOUT.read_text()
    assert "Every figure matches the story" in printed
    assert f"/dashboard?programme={outcome.programme}" in printed
    # The printout is figures and ids, never a person's details.
    for person in outcome.story.persons:
        assert f"{person.given_name} {person.family_name}" not in printed
        assert person.nino is None or person.nino not in printed
        assert person.phone is None or person.phone not in printed


async def test_the_dashboard_it_points_to_opens_on_the_programme(
    outcome: Outcome, platform: RunningPlatform
) -> None:
    url = dashboard_url(platform.gateway_url, outcome.programme, outcome.story.as_of)
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(url)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        # The key it prints is the programme office's: the dashboard's data calls work.
        listed = await client.get(
            f"{platform.gateway_url}/v1/reports/programmes",
            headers={"Authorization": f"Bearer {outcome.office_key}"},
        )
        assert listed.status_code == 200
        assert outcome.programme in [p["code"] for p in listed.json()["items"]]
