"""The story generator, without the platform: deterministic, synthetic, valid under the
contract, and shaped like the Working Well Expansion at scale."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import orjson
import pytest

from pathways.simulate import expected
from pathways.simulate.people import nino_is_valid
from pathways.simulate.programme import ELIGIBLE_BENEFITS, PROVIDER_OF
from pathways.simulate.rules import add_months, age_on
from pathways.simulate.story import Story, build_story

AS_OF = date(2026, 11, 23)


def digest(story: Story) -> str:
    """Everything the runner would send, and everything expected of it."""
    parts = [
        [r.body("p") for r in story.referrals],
        [
            (r.key, r.decision, r.reasons, r.duplicate_of, r.fate, r.mistakes)
            for r in story.referrals
        ],
        [
            (
                p.key,
                p.attached_on.isoformat(),
                p.key_worker,
                [a.body() for a in p.assessments],
                [e.body() | {"ended_on": str(e.ended_on)} for e in p.episodes],
                str(p.exit),
                [(c.type, str(c.achieved_on), c.decision, c.final, c.reasons) for c in p.claims],
            )
            for p in story.participants
        ],
        [
            (v.version.external_id, v.version.modified_at.isoformat(), v.expected)
            for batches in story.syncs.values()
            for batch in batches
            for v in batch
        ],
    ]
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()


@pytest.fixture(scope="module")
def story() -> Story:
    return build_story(2500, 7, AS_OF)


@pytest.fixture(scope="module")
def large() -> Story:
    return build_story(12000, 2018, AS_OF)


def test_the_same_seed_and_size_tell_the_same_story(story: Story) -> None:
    assert digest(build_story(2500, 7, AS_OF)) == digest(story)
    assert digest(build_story(2500, 8, AS_OF)) != digest(story)
    assert digest(build_story(2499, 7, AS_OF)) != digest(story)
    assert digest(build_story(2500, 7, AS_OF - timedelta(days=1))) != digest(story)


def test_people_are_synthetic_with_valid_unique_ninos_and_some_without(story: Story) -> None:
    ninos = [p.nino for p in story.persons if p.nino is not None]
    assert ninos and all(nino_is_valid(n) for n in ninos)
    assert len(set(ninos)) == len(ninos)
    without = sum(1 for p in story.persons if p.nino is None)
    assert 0.04 * len(story.persons) < without < 0.12 * len(story.persons)
    # No two people share what the duplicate rule matches on.
    identities = {(p.family_name.casefold(), p.date_of_birth, p.postcode) for p in story.persons}
    assert len(identities) == len(story.persons)
    assert all(p.phone is None or p.phone.startswith("07700 900") for p in story.persons)


def test_no_business_date_is_after_as_of_and_cohorts_have_24_months(story: Story) -> None:
    as_of = story.as_of
    latest_attachment = add_months(as_of, -24)
    for referral in story.referrals:
        assert referral.referred_on <= as_of
        assert referral.person.date_of_birth < referral.referred_on
    for p in story.participants:
        assert p.referral.referred_on <= p.attached_on <= latest_attachment
        assert p.assessments[0].kind == "initial" and p.assessments[0].assessed_on == p.attached_on
        left_on = p.exit[0] if p.exit else None
        for a in p.assessments:
            assert p.attached_on <= a.assessed_on <= (left_on or as_of)
        for e in p.episodes:
            assert p.referral.referred_on <= e.started_on <= (left_on or as_of)
            assert e.ended_on is None or e.started_on <= e.ended_on < as_of
        for c in p.claims:
            assert c.achieved_on <= as_of
            assert all(ev.dated <= as_of for ev in c.evidence)
        for s in p.sessions:
            assert s.modified_at.date() < as_of
            assert p.referral.referred_on <= s.occurred_at.date() <= (left_on or as_of)


def test_referrals_are_decided_as_the_contract_says(story: Story) -> None:
    for referral in story.referrals:
        person = referral.person
        reasons = []
        if person.benefit not in ELIGIBLE_BENEFITS:
            reasons.append("benefit_not_eligible")
        if not 18 <= age_on(person.date_of_birth, referral.referred_on) <= 66:
            reasons.append("age_out_of_range")
        if person.local_authority not in PROVIDER_OF:
            reasons.append("outside_area")
        if reasons:
            assert (referral.decision, referral.reasons) == ("rejected", tuple(reasons))
        else:
            assert referral.decision in ("accepted", "duplicate")
    by_key = {r.key: r for r in story.referrals}
    for referral in story.referrals_in_wave(2):
        original = by_key[referral.duplicate_of]
        assert original.wave == 1 and original.decision == "accepted"
        assert original.referred_on < referral.referred_on
        same_nino = (
            original.sent_nino and referral.sent_nino and original.sent_nino == referral.sent_nino
        )
        same_name = (
            referral.sent_family_name.casefold() == original.sent_family_name.casefold()
            and referral.sent_postcode.replace(" ", "").upper()
            == original.sent_postcode.replace(" ", "").upper()
        )
        assert same_nino or same_name
    # A re-referral comes after a decline, which no longer stands: accepted.
    for referral in story.referrals_in_wave(3):
        earlier = [r for r in story.referrals if r.person is referral.person and r.wave == 1]
        assert earlier[0].fate == "declined" and referral.decision == "accepted"


def test_the_story_exercises_every_rule_and_edge(story: Story) -> None:
    reasons = Counter(reason for r in story.referrals for reason in r.reasons)
    assert set(reasons) == {"benefit_not_eligible", "age_out_of_range", "outside_area"}
    statuses = Counter(r.final_status for r in story.referrals)
    assert {"attached", "declined", "withdrawn", "duplicate", "rejected", "accepted"} <= set(
        statuses
    )
    assert Counter(r.source for r in story.referrals).keys() == {
        "jcp",
        "probation",
        "treatment",
        "self",
    }
    assert story.refusals and story.referrals_in_wave(3)
    mistakes = Counter(m for r in story.referrals for m in r.mistakes)
    mistakes.update(m for p in story.participants for m in p.mistakes)
    assert set(mistakes) >= {
        "typo_nino",
        "retry",
        "retry_attach",
        "wrong_provider_attach",
        "bad_score",
        "second_initial",
        "withdraw_after_attach",
    }
    rules = Counter(reason for _, c in story.claims() for reason in c.reasons)
    assert set(rules) == {
        "not_attached",
        "outside_support_window",
        "duplicate_outcome",
        "hours_below_minimum",
        "no_job_start",
        "not_sustained",
        "missing_evidence",
    }
    claims = Counter((c.decision, c.final) for _, c in story.claims())
    assert claims[("review", "validated")] and claims[("review", "rejected")]
    types = {c.type for _, c in story.claims() if c.final == "validated"}
    assert types == {
        "job_start",
        "sustained_13",
        "sustained_26",
        "sustained_50",
        "qualification",
        "volunteering_start",
        "education_start",
    }
    episodes = [e for p in story.participants for e in p.episodes]
    assert any(e.self_employed and e.hours_per_week < 16 for e in episodes)
    assert any(len(p.episodes) > 1 for p in story.participants)
    kinds = Counter(a.kind for p in story.participants for a in p.assessments)
    assert kinds.keys() == {"initial", "review", "exit"}
    assert {reason for p in story.participants if p.exit for reason in [p.exit[1]]} == {
        "completed",
        "left_early",
        "moved_away",
    }
    syncs = Counter(i.expected for b in story.syncs.values() for batch in b for i in batch)
    assert syncs.keys() == {"created", "updated", "unchanged", "stale", "error"}
    assert all(0 < len(batch) <= 1000 for b in story.syncs.values() for batch in b)


def test_each_claim_is_decided_as_the_story_meant(story: Story) -> None:
    """The generator says what it means each claim to be; the independent judge of the
    contract's rules must agree, or the generator is wrong about its own story."""
    for _, claim in story.claims():
        if claim.intent == "validated":
            assert (claim.decision, claim.reasons) == ("validated", ()), claim
        elif claim.intent == "review":
            assert claim.decision == "review" and claim.review_decision in ("validate", "reject")
            assert (
                claim.final
                == {"validate": "validated", "reject": "rejected"}[claim.review_decision]
            )
        else:
            assert claim.decision == "rejected" and claim.intent in claim.reasons, claim


def test_a_large_programme_has_the_evaluations_shape(large: Story) -> None:
    figures = expected.expectations(large)
    headline = figures.performance["all"]
    # 69% of referrals attached (¶3.2).
    assert abs(expected.referral_rate(large) - Decimal("0.69")) < Decimal("0.02")
    # About 20% into work (¶3.16), and 44% of eligible starters sustaining (¶3.18).
    assert abs(headline["job_start_rate"] - Decimal("0.20")) < Decimal("0.02")
    assert abs(headline["sustainment_rate"] - Decimal("0.44")) < Decimal("0.04")
    # Most quarterly cohorts reach about 20% within 24 months; volumes are uneven.
    big = {k: v for k, v in figures.cohorts.items() if v["attachments"] >= 500}
    assert len(big) >= 7
    at_24 = [v["job_start_rate_by_month"][23] for v in big.values()]
    assert all(rate is not None for rate in at_24)
    assert sum(1 for rate in at_24 if Decimal("0.17") <= rate <= Decimal("0.25")) >= len(big) - 2
    sizes = [v["attachments"] for v in big.values()]
    assert max(sizes) > 1.8 * min(sizes)
    # The six most common severe barriers are Table 3-2's, at about its rates.
    table_3_2 = {
        "confidence": (0.27, 0.75),
        "work_experience": (0.26, 0.77),
        "private_transport": (0.25, 0.73),
        "qualifications_skills": (0.23, 0.82),
        "physical_health": (0.20, 0.67),
        "mental_health": (0.20, 0.74),
    }
    rows = figures.barriers["rows"]
    assert {r["barrier"] for r in rows[:6]} == set(table_3_2)
    for row in rows[:6]:
        severe, improved = table_3_2[row["barrier"]]
        assert abs(float(row["severe_share"]) - severe) < 0.02, row
        assert abs(float(row["improved_rate"]) - improved) < 0.08, row
    # 2.7 severe barriers at attachment, 1.7 at review (¶3.24).
    assert abs(float(figures.barriers["mean_severe_at_attachment"]) - 2.7) < 0.15
    assert abs(float(figures.barriers["mean_severe_at_latest_review"]) - 1.7) < 0.15
    # Manchester and Bolton have the most attachments (¶3.2); Wigan out-performs
    # Manchester into work (¶3.28).
    areas = figures.by_group["local_authority"]
    top = sorted(areas, key=lambda k: -areas[k]["attachments"])[:2]
    assert set(top) == {"Manchester", "Bolton"}
    assert areas["Wigan"]["job_start_rate"] > areas["Manchester"]["job_start_rate"]
    benefits = figures.by_group["benefit"]
    assert benefits["ESA"]["job_start_rate"] < benefits["JSA"]["job_start_rate"]


def test_referrals_run_for_two_years_ending_26_months_before_as_of() -> None:
    story = build_story(50, 1, date(2025, 5, 17))
    timeline = story.timeline
    # 26 months before 17 May 2025 is 17 March 2023: the last full quarter before it
    # ends on 31 December 2022, and the two years start on 1 January 2021.
    assert timeline.last_referral_day == date(2022, 12, 31)
    assert timeline.first_referral_day == date(2021, 1, 1)
    assert timeline.latest_attachment == date(2023, 5, 17)
    assert all(
        timeline.first_referral_day <= r.referred_on <= timeline.last_referral_day
        for r in story.referrals
        if r.wave != 2
    )
    assert all(
        r.referred_on <= timeline.last_referral_day + timedelta(days=45) for r in story.referrals
    )
