"""GET /v1/reports/performance over the hand-built programme of
:func:`tests.reporting.programmes.performance_story`; every figure worked out below."""

from __future__ import annotations

import pytest

from tests.reporting.programmes import PerformanceStory, performance_story
from tests.reporting.story import Story, feed, get_report, keys, office, reporting, row

FIELDS = (
    "referrals",
    "accepted",
    "attachments",
    "attachment_rate",
    "job_starts",
    "job_start_rate",
    "sustained",
    "sustainment_eligible",
    "sustainment_rate",
    "accrued_pence",
)


def figures(r: dict) -> tuple:
    return tuple(r[f] for f in FIELDS)


@pytest.fixture(scope="module")
async def fed(sandbox, apps) -> PerformanceStory:
    rep = await reporting(apps)
    built = performance_story()
    await feed(sandbox, rep, built.story.events)
    return built


@pytest.fixture
async def client(apps):
    async with office(await reporting(apps)) as c:
        yield c


async def test_overall_row(fed: PerformanceStory, client) -> None:
    report = await get_report(client, "performance", fed.story.code, as_of="2024-12-31")
    assert report["programme"] == fed.story.code and report["as_of"] == "2024-12-31"
    # referrals: R1 R2 R3 R4 R6 R7 R8 (R5 was a duplicate; R9 is referred in 2025).
    # accepted: R1 R2 R3 R7 R8 (R4 was withdrawn while only received; R6 rejected).
    # attachments: P1 P2 P7 P8 -> 4/5. job starts: P1 P2 P8 (P7's were rejected or in
    # review) -> 3/4. sustained_50: P1's is dated 2025 -> 0; eligible: a job start on or
    # before 2024-12-31 - 350 days = 2024-01-16: none -> rate null.
    # accrued: P1 30000+120000+40000, P2 30000+120000, P7 30000-30000, P8 30000+120000.
    assert report["rows"] == [
        {
            "key": "all",
            "referrals": 7,
            "accepted": 5,
            "attachments": 4,
            "attachment_rate": 0.8,
            "job_starts": 3,
            "job_start_rate": 0.75,
            "sustained": 0,
            "sustainment_eligible": 0,
            "sustainment_rate": None,
            "accrued_pence": 490000,
        }
    ]


async def test_later_as_of_brings_sustainment_in(fed: PerformanceStory, client) -> None:
    report = await get_report(client, "performance", fed.story.code, as_of="2025-06-30")
    # R9 now referred and accepted: 8 referrals, 6 accepted -> 4/6 = 0.6667.
    # Eligible: job start on or before 2025-06-30 - 350 days = 2024-07-15: P1, P2.
    # Sustained: P1's sustained_50 (2025-02-10) -> 1/2. Accrued + 60000.
    assert figures(row(report)) == (8, 6, 4, 0.6667, 3, 0.75, 1, 2, 0.5, 550000)


async def test_business_dates_boundaries(fed: PerformanceStory, client) -> None:
    # On 2024-02-15: R1 R2 R3 referred (accepted all three), P1 attached (20 Jan), its
    # job start that very day counts; P2 attaches on the 29th.
    report = await get_report(client, "performance", fed.story.code, as_of="2024-02-15")
    assert figures(row(report)) == (3, 3, 1, 0.3333, 1, 1.0, 0, 0, None, 150000)
    # The day before: no job start yet.
    report = await get_report(client, "performance", fed.story.code, as_of="2024-02-14")
    assert figures(row(report)) == (3, 3, 1, 0.3333, 0, 0.0, 0, 0, None, 30000)


async def test_as_of_before_anything_happened(fed: PerformanceStory, client) -> None:
    report = await get_report(client, "performance", fed.story.code, as_of="2023-12-31")
    assert figures(row(report)) == (0, 0, 0, None, 0, None, 0, 0, None, 0)
    for group_by in ("local_authority", "provider", "attachment_quarter", "gender"):
        grouped = await get_report(
            client, "performance", fed.story.code, as_of="2023-12-31", group_by=group_by
        )
        assert grouped["rows"] == []


async def test_by_local_authority(fed: PerformanceStory, client) -> None:
    report = await get_report(
        client, "performance", fed.story.code, as_of="2024-12-31", group_by="local_authority"
    )
    assert keys(report) == ["Bolton", "Bury", "Wigan"]
    # Bolton: R3 (accepted, withdrawn), R4 (never accepted): 0 of 1 attached.
    assert figures(row(report, "Bolton")) == (2, 1, 0, 0.0, 0, None, 0, 0, None, 0)
    # Bury: R6, R7 (R5 duplicate excluded); P7 attached, no valid job start; its
    # attachment accrual was reversed.
    assert figures(row(report, "Bury")) == (2, 1, 1, 1.0, 0, 0.0, 0, 0, None, 0)
    assert figures(row(report, "Wigan")) == (3, 3, 3, 1.0, 3, 1.0, 0, 0, None, 490000)


async def test_by_provider(fed: PerformanceStory, client) -> None:
    report = await get_report(
        client, "performance", fed.story.code, as_of="2024-12-31", group_by="provider"
    )
    north, south = str(fed.north), str(fed.south)
    assert keys(report) == sorted([north, south])
    # A referral groups under the provider it was routed to: R4 (never accepted), R5
    # (duplicate) and R6 (rejected) have none.
    assert figures(row(report, north)) == (4, 4, 3, 0.75, 3, 1.0, 0, 0, None, 490000)
    assert figures(row(report, south)) == (1, 1, 1, 1.0, 0, 0.0, 0, 0, None, 0)


async def test_by_source(fed: PerformanceStory, client) -> None:
    report = await get_report(
        client, "performance", fed.story.code, as_of="2024-12-31", group_by="source"
    )
    assert keys(report) == ["jcp", "probation", "self", "treatment"]
    assert figures(row(report, "jcp")) == (4, 3, 2, 0.6667, 2, 1.0, 0, 0, None, 340000)
    assert figures(row(report, "probation")) == (1, 1, 1, 1.0, 1, 1.0, 0, 0, None, 150000)
    # self: one referral never accepted -> both rates have zero denominators.
    assert figures(row(report, "self")) == (1, 0, 0, None, 0, None, 0, 0, None, 0)
    assert figures(row(report, "treatment")) == (1, 1, 1, 1.0, 0, 0.0, 0, 0, None, 0)


async def test_by_benefit_gender_and_age_band(fed: PerformanceStory, client) -> None:
    code = fed.story.code
    benefit = await get_report(client, "performance", code, as_of="2024-12-31", group_by="benefit")
    assert keys(benefit) == ["ESA", "JSA", "PIP", "UC"]
    assert figures(row(benefit, "ESA")) == (4, 3, 3, 1.0, 2, 0.6667, 0, 0, None, 340000)
    assert figures(row(benefit, "PIP")) == (1, 0, 0, None, 0, None, 0, 0, None, 0)
    assert figures(row(benefit, "UC")) == (1, 1, 0, 0.0, 0, None, 0, 0, None, 0)

    # R4 states no gender: left out; "other" was only R5, a duplicate: no such group.
    gender = await get_report(client, "performance", code, as_of="2024-12-31", group_by="gender")
    assert keys(gender) == ["female", "male"]
    assert figures(row(gender, "female")) == (4, 3, 2, 0.6667, 2, 1.0, 0, 0, None, 340000)
    assert figures(row(gender, "male")) == (2, 2, 2, 1.0, 1, 0.5, 0, 0, None, 150000)

    # R4 has no age band (under 18): left out.
    age = await get_report(client, "performance", code, as_of="2024-12-31", group_by="age_band")
    assert keys(age) == ["18-24", "25-34", "35-49", "50+"]
    assert figures(row(age, "25-34")) == (2, 1, 1, 1.0, 0, 0.0, 0, 0, None, 0)
    assert figures(row(age, "50+")) == (1, 1, 0, 0.0, 0, None, 0, 0, None, 0)


async def test_by_attachment_quarter(fed: PerformanceStory, client) -> None:
    report = await get_report(
        client, "performance", fed.story.code, as_of="2024-12-31", group_by="attachment_quarter"
    )
    assert keys(report) == ["2024-Q1", "2024-Q2", "2024-Q3"]
    # No referral figures by attachment quarter.
    assert figures(row(report, "2024-Q1")) == (None, None, 2, None, 2, 1.0, 0, 0, None, 340000)
    assert figures(row(report, "2024-Q2")) == (None, None, 1, None, 0, 0.0, 0, 0, None, 0)
    assert figures(row(report, "2024-Q3")) == (None, None, 1, None, 1, 1.0, 0, 0, None, 150000)


async def test_min_months_attached(fed: PerformanceStory, client) -> None:
    code = fed.story.code
    # 6 months by 2024-12-31: attached on or before 2024-06-30: P1 P2 P7 (not P8);
    # of those P1 and P2 started work. accepted (5) is not filtered.
    six = await get_report(client, "performance", code, as_of="2024-12-31", min_months_attached=6)
    assert figures(row(six)) == (7, 5, 3, 0.6, 2, 0.6667, 0, 0, None, 490000)
    # 8 months: attached by 2024-04-30: P1 P2. P2 started on 2024-06-01, after that
    # cut-off but before as_of: still a job start of a participant attached 8 months.
    eight = await get_report(client, "performance", code, as_of="2024-12-31", min_months_attached=8)
    assert figures(row(eight))[2:6] == (2, 0.4, 2, 1.0)
    # 10 months: 29 Feb + 10 months = 29 Dec <= 31 Dec, so P2 still counts.
    ten = await get_report(client, "performance", code, as_of="2024-12-31", min_months_attached=10)
    assert figures(row(ten))[2:6] == (2, 0.4, 2, 1.0)
    # 11 months: attached by 31 Jan: P1 only.
    eleven = await get_report(
        client, "performance", code, as_of="2024-12-31", min_months_attached=11
    )
    assert figures(row(eleven))[2:6] == (1, 0.2, 1, 1.0)
    # Grouped, the late job start lands in its group too.
    grouped = await get_report(
        client,
        "performance",
        code,
        as_of="2024-12-31",
        min_months_attached=8,
        group_by="gender",
    )
    assert figures(row(grouped, "male"))[2:6] == (1, 0.5, 1, 1.0)
    assert figures(row(grouped, "female"))[2:6] == (1, 0.3333, 1, 1.0)


async def test_min_months_clamps_at_month_end(sandbox, apps, client) -> None:
    s = Story().define()
    referral = s.referral("2024-01-02", statuses=("received", "accepted", "attached"))
    s.attach(referral, "2024-01-31", accrue=False)
    await feed(sandbox, await reporting(apps), s.events)
    # 31 January + 1 month = 29 February (2024 is a leap year).
    leap = await get_report(
        client, "performance", s.code, as_of="2024-02-29", min_months_attached=1
    )
    assert row(leap)["attachments"] == 1
    before = await get_report(
        client, "performance", s.code, as_of="2024-02-28", min_months_attached=1
    )
    assert row(before)["attachments"] == 0
    assert row(before)["attachment_rate"] == 0.0


async def test_sustainment_weeks_picks_the_claim_type(sandbox, apps, client) -> None:
    # A 13-week programme counts sustained_13 claims, not sustained_50.
    s = Story(sustainment_weeks=13).define()
    north = s.providers["Wigan"]
    referral = s.referral("2024-01-02", statuses=("received", "accepted", "attached"))
    p = s.attach(referral, "2024-01-10")
    s.claim(p, "job_start", "2024-02-01", north)
    s.claim(p, "sustained_13", "2024-05-10", north)
    s.claim(p, "sustained_50", "2025-01-20", north)
    await feed(sandbox, await reporting(apps), s.events)
    # Eligible on 2024-05-02 = 2024-02-01 + 91 days; not the day before.
    assert (
        row(await get_report(client, "performance", s.code, as_of="2024-05-01"))[
            "sustainment_eligible"
        ]
        == 0
    )
    on_day = row(await get_report(client, "performance", s.code, as_of="2024-05-02"))
    assert (on_day["sustained"], on_day["sustainment_eligible"], on_day["sustainment_rate"]) == (
        0,
        1,
        0.0,
    )
    later = row(await get_report(client, "performance", s.code, as_of="2024-06-01"))
    assert (later["sustained"], later["sustainment_eligible"], later["sustainment_rate"]) == (
        1,
        1,
        1.0,
    )
