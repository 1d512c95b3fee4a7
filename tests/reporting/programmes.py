"""Small programmes built by hand; each test works out its figures from these.

``performance_story`` (sustainment 50 weeks; Wigan and Bolton -> provider "north",
Bury -> "south"):

| ref | LA     | source    | benefit | gender | age   | referred   | statuses                    |
|-----|--------|-----------|---------|--------|-------|------------|-----------------------------|
| R1  | Wigan  | jcp       | ESA     | female | 35-49 | 2024-01-10 | received accepted attached  |
| R2  | Wigan  | probation | JSA     | male   | 18-24 | 2024-01-31 | received accepted attached  |
| R3  | Bolton | jcp       | UC      | female | 50+   | 2024-02-05 | received accepted withdrawn |
| R4  | Bolton | self      | ESA     | -      | -     | 2024-03-01 | received withdrawn          |
| R5  | Bury   | treatment | ESA     | other  | 25-34 | 2024-03-15 | received duplicate          |
| R6  | Bury   | jcp       | PIP     | female | 25-34 | 2024-04-01 | received rejected           |
| R7  | Bury   | treatment | ESA     | male   | 25-34 | 2024-04-10 | received accepted attached  |
| R8  | Wigan  | jcp       | ESA     | female | 35-49 | 2024-09-01 | received accepted attached  |
| R9  | Wigan  | jcp       | ESA     | female | 35-49 | 2025-01-05 | received accepted           |

Participants (each with a 30000 attachment accrual on its attachment day):

* P1 (R1) attached 2024-01-20; job start validated 2024-02-15 (+120000);
  sustained_50 validated 2025-02-10 (+60000); a sustained_13 validated 2024-05-20 (+40000).
* P2 (R2) attached 2024-02-29; job start validated 2024-06-01 (+120000).
* P7 (R7) attached 2024-05-01; job start rejected (2024-06-10), another in review
  (2024-07-01); a reversal of its attachment accrual (-30000) on 2024-05-20.
* P8 (R8) attached 2024-09-15; job start validated 2024-10-01 (+120000).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.reporting.story import Story


@dataclass
class PerformanceStory:
    story: Story
    north: uuid.UUID
    south: uuid.UUID
    participants: dict[str, uuid.UUID]


def performance_story(
    code: str | None = None, north: uuid.UUID | None = None, south: uuid.UUID | None = None
) -> PerformanceStory:
    north = north or uuid.uuid4()
    south = south or uuid.uuid4()
    s = Story(providers={"Wigan": north, "Bolton": north, "Bury": south})
    if code:
        s.code = code
    s.define()
    r1 = s.referral("2024-01-10", statuses=("received", "accepted", "attached"))
    r2 = s.referral(
        "2024-01-31",
        statuses=("received", "accepted", "attached"),
        source="probation",
        benefit="JSA",
        gender="male",
        age_band="18-24",
    )
    s.referral(
        "2024-02-05",
        statuses=("received", "accepted", "withdrawn"),
        local_authority="Bolton",
        benefit="UC",
        age_band="50+",
    )
    s.referral(
        "2024-03-01",
        statuses=("received", "withdrawn"),
        local_authority="Bolton",
        source="self",
        gender=None,
        age_band=None,
    )
    s.referral(
        "2024-03-15",
        statuses=("received", "duplicate"),
        local_authority="Bury",
        source="treatment",
        gender="other",
        age_band="25-34",
    )
    s.referral(
        "2024-04-01",
        statuses=("received", "rejected"),
        local_authority="Bury",
        benefit="PIP",
        age_band="25-34",
    )
    r7 = s.referral(
        "2024-04-10",
        statuses=("received", "accepted", "attached"),
        local_authority="Bury",
        source="treatment",
        gender="male",
        age_band="25-34",
    )
    r8 = s.referral("2024-09-01", statuses=("received", "accepted", "attached"))
    s.referral("2025-01-05", statuses=("received", "accepted"))

    p1 = s.attach(r1, "2024-01-20")
    s.claim(p1, "job_start", "2024-02-15", north)
    s.claim(p1, "sustained_13", "2024-05-20", north)
    s.claim(p1, "sustained_50", "2025-02-10", north)
    p2 = s.attach(r2, "2024-02-29")
    s.claim(p2, "job_start", "2024-06-01", north)
    p7 = s.attach(r7, "2024-05-01", local_authority="Bury")
    s.claim(p7, "job_start", "2024-06-10", south, status="rejected")
    s.claim(p7, "job_start", "2024-07-01", south, status="review")
    s.accrual(p7, "attachment", -30000, "2024-05-20", south)
    p8 = s.attach(r8, "2024-09-15")
    s.claim(p8, "job_start", "2024-10-01", north)
    return PerformanceStory(s, north, south, {"P1": p1, "P2": p2, "P7": p7, "P8": p8})


def cohort_story() -> Story:
    """Q1 2024: A attached 31 Jan, job start 29 Feb (31 Jan + 1 month, clamped);
    B attached 31 Mar, job start 31 May (+2 months); C attached 15 Feb, job start 16 May
    (a day past 3 months: month 4). Q2: D attached 30 Apr, job start claim rejected;
    E attached 30 Jun, job start 30 Jul (+1 month). F attached 5 Oct (Q4), no start."""
    s = Story().define()
    wigan = s.providers["Wigan"]
    for attached, start, status in [
        ("2024-01-31", "2024-02-29", "validated"),
        ("2024-03-31", "2024-05-31", "validated"),
        ("2024-02-15", "2024-05-16", "validated"),
        ("2024-04-30", "2024-06-01", "rejected"),
        ("2024-06-30", "2024-07-30", "validated"),
        ("2024-10-05", None, None),
    ]:
        referral = s.referral(attached, statuses=("received", "accepted", "attached"))
        participant = s.attach(referral, attached)
        if start:
            s.claim(participant, "job_start", start, wigan, status=status)
    return s


def barrier_story() -> Story:
    """P1 attached 10 Jan 2024: initial 10 Jan {mental_health 5, physical_health 4,
    debt 1, confidence 6}; review 10 Jul {mental_health 3, physical_health 4,
    confidence 2}.
    P2 attached 1 Feb: initial 1 Feb {mental_health 6, housing 4}; review 1 Aug
    {mental_health 6}; exit 1 Oct {mental_health 2, housing 5}.
    P3 attached 1 Mar: initial 1 Mar {mental_health 2, age 5}; never reviewed.
    P4 attached 1 Mar: no initial assessment, a review {mental_health 5}.
    P5 attached 5 Jan 2025 with an initial {debt 6}.
    P6 attached 1 Dec 2024, initial dated 10 Jan 2025 {housing 6}."""
    s = Story().define()
    provider = s.providers["Wigan"]

    def participant(attached: str) -> uuid.UUID:
        referral = s.referral(attached, statuses=("received", "accepted", "attached"))
        return s.attach(referral, attached)

    p1 = participant("2024-01-10")
    s.assessment(
        p1,
        "initial",
        "2024-01-10",
        {"mental_health": 5, "physical_health": 4, "debt": 1, "confidence": 6},
        provider,
    )
    s.assessment(
        p1,
        "review",
        "2024-07-10",
        {"mental_health": 3, "physical_health": 4, "confidence": 2},
        provider,
    )
    p2 = participant("2024-02-01")
    s.assessment(p2, "initial", "2024-02-01", {"mental_health": 6, "housing": 4}, provider)
    s.assessment(p2, "review", "2024-08-01", {"mental_health": 6}, provider)
    s.assessment(p2, "exit", "2024-10-01", {"mental_health": 2, "housing": 5}, provider)
    p3 = participant("2024-03-01")
    s.assessment(p3, "initial", "2024-03-01", {"mental_health": 2, "age": 5}, provider)
    p4 = participant("2024-03-01")
    s.assessment(p4, "review", "2024-09-01", {"mental_health": 5}, provider)
    p5 = participant("2025-01-05")
    s.assessment(p5, "initial", "2025-01-05", {"debt": 6}, provider)
    p6 = participant("2024-12-01")
    s.assessment(p6, "initial", "2025-01-10", {"housing": 6}, provider)
    return s
