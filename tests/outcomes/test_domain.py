"""The claim rules of contract §4 as pure functions: each rule alone, in combination and
in order, the review path, waiting for facts, and the audit draw. No database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from services.outcomes import domain
from services.outcomes.domain import (
    Attachment,
    Claim,
    ClaimFacts,
    ClaimStatus,
    Episode,
    EvidenceKind,
    JobStart,
    MissingFact,
    OutcomeType,
    ProgrammeTerms,
    Result,
    Rule,
)

PROVIDER = uuid.uuid4()
OTHER_PROVIDER = uuid.uuid4()
PARTICIPANT = uuid.uuid4()
EPISODE = uuid.uuid4()
ATTACHED_ON = date(2024, 2, 20)
TERMS = ProgrammeTerms(
    code="working-well",
    support_weeks=104,
    min_job_hours=16,
    sustainment_weeks=50,
    tariff={"attachment": 30000, "job_start": 120000, "sustained_50": 60000},
)
PAYSLIP = (EvidenceKind.PAYSLIP,)


def claim(
    type_: OutcomeType = OutcomeType.JOB_START,
    achieved_on: date = date(2024, 5, 1),
    *,
    evidence: tuple[EvidenceKind, ...] = PAYSLIP,
    provider: uuid.UUID = PROVIDER,
    employment_id: uuid.UUID | None = EPISODE,
) -> Claim:
    return Claim(
        claim_id=uuid.uuid4(),
        participant_id=PARTICIPANT,
        provider_id=provider,
        type=type_,
        achieved_on=achieved_on,
        employment_id=employment_id if type_ is OutcomeType.JOB_START else None,
        evidence_kinds=evidence,
    )


def episode(
    started_on: date = date(2024, 5, 1),
    ended_on: date | None = None,
    *,
    hours: float = 20,
    self_employed: bool = False,
    episode_id: uuid.UUID = EPISODE,
) -> Episode:
    return Episode(episode_id, started_on, ended_on, hours, self_employed)


def facts(**overrides) -> ClaimFacts:
    job = episode()
    values = {
        "attachment": Attachment(PARTICIPANT, PROVIDER, "working-well", ATTACHED_ON),
        "programme": TERMS,
        "claimed_episode": job,
        "episodes": (job,),
    }
    values.update(overrides)
    return ClaimFacts(**values)


def sustained_facts(job_start_on: date, episodes: tuple[Episode, ...], **overrides) -> ClaimFacts:
    return facts(
        claimed_episode=None,
        episodes=episodes,
        job_start=JobStart(uuid.uuid4(), job_start_on),
        **overrides,
    )


def result_of(evaluation: domain.Evaluation, rule: Rule) -> Result:
    return next(c.result for c in evaluation.checks if c.rule is rule)


# --- the happy paths -----------------------------------------------------------------


def test_a_job_start_with_every_fact_in_order_is_validated() -> None:
    evaluation = domain.evaluate_claim(claim(), facts())
    assert evaluation.status is ClaimStatus.VALIDATED
    assert evaluation.reasons == ()
    assert [c.rule for c in evaluation.checks] == list(Rule)


def test_every_type_passes_with_good_facts() -> None:
    for type_ in OutcomeType:
        if type_.sustained_weeks:
            n = type_.sustained_weeks
            start = date(2024, 3, 1)
            evaluation = domain.evaluate_claim(
                claim(type_, start + timedelta(weeks=n)),
                sustained_facts(start, (episode(start),)),
            )
        else:
            evaluation = domain.evaluate_claim(claim(type_), facts())
        assert evaluation.status is ClaimStatus.VALIDATED, (type_, evaluation.reasons)


@pytest.mark.parametrize(
    "kinds, status",
    [
        ((EvidenceKind.SELF_DECLARATION,), ClaimStatus.REVIEW),
        ((EvidenceKind.SELF_DECLARATION, EvidenceKind.SELF_DECLARATION), ClaimStatus.REVIEW),
        ((EvidenceKind.SELF_DECLARATION, EvidenceKind.PAYSLIP), ClaimStatus.VALIDATED),
        ((EvidenceKind.HMRC_RTI,), ClaimStatus.VALIDATED),
        ((EvidenceKind.EMPLOYER_CONFIRMATION,), ClaimStatus.VALIDATED),
        ((EvidenceKind.CERTIFICATE,), ClaimStatus.VALIDATED),
    ],
)
def test_only_self_declaration_goes_to_review(kinds, status) -> None:
    evaluation = domain.evaluate_claim(claim(evidence=kinds), facts())
    assert evaluation.status is status
    assert evaluation.reasons == ()


def test_a_failing_self_declared_claim_is_rejected_not_reviewed() -> None:
    evaluation = domain.evaluate_claim(
        claim(evidence=(EvidenceKind.SELF_DECLARATION,)),
        facts(claimed_episode=episode(hours=10)),
    )
    assert evaluation.status is ClaimStatus.REJECTED
    assert evaluation.reasons == (Rule.HOURS_BELOW_MINIMUM,)


# --- each rule alone --------------------------------------------------------------------


def test_not_attached_when_the_participant_is_unknown() -> None:
    evaluation = domain.evaluate_claim(claim(), ClaimFacts())
    assert evaluation.reasons == (Rule.NOT_ATTACHED,)


def test_not_attached_when_attached_to_another_provider_and_its_facts_stay_unused() -> None:
    others = Attachment(PARTICIPANT, OTHER_PROVIDER, "working-well", ATTACHED_ON)
    # Facts that would fail other rules are not looked at for someone else's participant.
    evaluation = domain.evaluate_claim(
        claim(achieved_on=date(2020, 1, 1)),
        ClaimFacts(attachment=others, programme=TERMS, claimed_episode=episode(hours=1)),
    )
    assert evaluation.status is ClaimStatus.REJECTED
    assert evaluation.reasons == (Rule.NOT_ATTACHED,)
    for rule in (Rule.OUTSIDE_SUPPORT_WINDOW, Rule.HOURS_BELOW_MINIMUM):
        assert result_of(evaluation, rule) is Result.NOT_CHECKED
    record = evaluation.record(datetime.now(UTC))
    assert "2024-02-20" not in str(record)  # the other provider's attachment date


@pytest.mark.parametrize(
    "achieved_on, inside",
    [
        (ATTACHED_ON - timedelta(days=1), False),
        (ATTACHED_ON, True),
        (ATTACHED_ON + timedelta(weeks=104), True),
        (ATTACHED_ON + timedelta(weeks=104, days=1), False),
    ],
)
def test_outside_support_window_edges(achieved_on, inside) -> None:
    evaluation = domain.evaluate_claim(claim(OutcomeType.QUALIFICATION, achieved_on), facts())
    assert evaluation.reasons == (() if inside else (Rule.OUTSIDE_SUPPORT_WINDOW,))


def test_support_window_is_not_checked_for_sustained_claims() -> None:
    start = ATTACHED_ON + timedelta(weeks=100)
    achieved = start + timedelta(weeks=50)  # long after the 104-week support window
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_50, achieved), sustained_facts(start, (episode(start),))
    )
    assert evaluation.status is ClaimStatus.VALIDATED
    assert result_of(evaluation, Rule.OUTSIDE_SUPPORT_WINDOW) is Result.NOT_APPLICABLE


def test_duplicate_outcome() -> None:
    existing = uuid.uuid4()
    evaluation = domain.evaluate_claim(claim(), facts(duplicate_of=existing))
    assert evaluation.reasons == (Rule.DUPLICATE_OUTCOME,)
    check = evaluation.checks[2]
    assert check.facts == {"existing_claim_id": str(existing)}


@pytest.mark.parametrize(
    "hours, self_employed, below",
    [
        (15.9, False, True),
        (16, False, False),
        (40, False, False),
        (5, True, False),
        (0, False, True),
    ],
)
def test_hours_below_minimum(hours, self_employed, below) -> None:
    evaluation = domain.evaluate_claim(
        claim(), facts(claimed_episode=episode(hours=hours, self_employed=self_employed))
    )
    assert evaluation.reasons == ((Rule.HOURS_BELOW_MINIMUM,) if below else ())


def test_hours_fail_when_the_claimed_episode_never_became_known() -> None:
    evaluation = domain.evaluate_claim(claim(), facts(claimed_episode=None))
    assert evaluation.reasons == (Rule.HOURS_BELOW_MINIMUM,)
    assert evaluation.checks[3].facts["episode_known"] is False


def test_hours_rule_is_only_for_job_starts() -> None:
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.QUALIFICATION), facts(claimed_episode=episode(hours=1))
    )
    assert evaluation.status is ClaimStatus.VALIDATED
    assert result_of(evaluation, Rule.HOURS_BELOW_MINIMUM) is Result.NOT_APPLICABLE


def test_no_job_start_then_not_sustained_is_not_checked() -> None:
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_13, date(2024, 9, 1)), facts(claimed_episode=None)
    )
    assert evaluation.reasons == (Rule.NO_JOB_START,)
    assert result_of(evaluation, Rule.NOT_SUSTAINED) is Result.NOT_CHECKED


def test_not_sustained_with_a_gap_too_long() -> None:
    start = date(2024, 3, 4)
    # 13 weeks claimed at start + 17 weeks: 91 days needed out of 119; in work 60 + 28.
    episodes = (
        episode(start, start + timedelta(days=59)),
        episode(start + timedelta(days=80), start + timedelta(days=107), episode_id=uuid.uuid4()),
    )
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_13, start + timedelta(weeks=17)),
        sustained_facts(start, episodes),
    )
    assert evaluation.reasons == (Rule.NOT_SUSTAINED,)
    facts_used = evaluation.checks[5].facts
    assert facts_used["covered_days"] == 88
    assert facts_used["required_days"] == 91
    assert facts_used["window_days"] == 119


def test_sustained_50_of_54_with_a_four_week_gap_passes() -> None:
    start = date(2024, 1, 1)
    episodes = (
        episode(start, start + timedelta(weeks=20) - timedelta(days=1)),
        episode(start + timedelta(weeks=24), None, episode_id=uuid.uuid4()),
    )
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_50, start + timedelta(weeks=54)),
        sustained_facts(start, episodes),
    )
    assert evaluation.status is ClaimStatus.VALIDATED
    assert evaluation.checks[5].facts["covered_days"] == 50 * 7


def test_sustained_claimed_too_early_cannot_pass() -> None:
    start = date(2024, 1, 1)
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_13, start + timedelta(weeks=13) - timedelta(days=1)),
        sustained_facts(start, (episode(start),)),
    )
    assert evaluation.reasons == (Rule.NOT_SUSTAINED,)


def test_missing_evidence() -> None:
    evaluation = domain.evaluate_claim(claim(evidence=()), facts())
    assert evaluation.reasons == (Rule.MISSING_EVIDENCE,)


# --- combinations, in the contract's order ----------------------------------------------


def test_every_applicable_rule_failing_at_once_for_a_job_start() -> None:
    evaluation = domain.evaluate_claim(
        claim(achieved_on=ATTACHED_ON - timedelta(days=3), evidence=()),
        facts(duplicate_of=uuid.uuid4(), claimed_episode=episode(hours=8)),
    )
    assert evaluation.reasons == (
        Rule.OUTSIDE_SUPPORT_WINDOW,
        Rule.DUPLICATE_OUTCOME,
        Rule.HOURS_BELOW_MINIMUM,
        Rule.MISSING_EVIDENCE,
    )


def test_sustained_failures_in_order() -> None:
    start = date(2024, 3, 1)
    evaluation = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_26, start + timedelta(weeks=26), evidence=()),
        sustained_facts(start, (), duplicate_of=uuid.uuid4()),
    )
    assert evaluation.reasons == (
        Rule.DUPLICATE_OUTCOME,
        Rule.NOT_SUSTAINED,
        Rule.MISSING_EVIDENCE,
    )
    no_start = domain.evaluate_claim(
        claim(OutcomeType.SUSTAINED_26, start + timedelta(weeks=26), evidence=()),
        facts(duplicate_of=uuid.uuid4(), claimed_episode=None),
    )
    assert no_start.reasons == (
        Rule.DUPLICATE_OUTCOME,
        Rule.NO_JOB_START,
        Rule.MISSING_EVIDENCE,
    )


def test_not_attached_combines_with_what_the_claim_itself_shows() -> None:
    evaluation = domain.evaluate_claim(claim(evidence=()), ClaimFacts(duplicate_of=uuid.uuid4()))
    assert evaluation.reasons == (
        Rule.NOT_ATTACHED,
        Rule.DUPLICATE_OUTCOME,
        Rule.MISSING_EVIDENCE,
    )


@pytest.mark.parametrize("mask", range(1, 16))
def test_any_subset_of_job_start_failures_is_listed_in_order(mask: int) -> None:
    window = bool(mask & 1)
    duplicate = bool(mask & 2)
    hours = bool(mask & 4)
    evidence = bool(mask & 8)
    evaluation = domain.evaluate_claim(
        claim(
            achieved_on=ATTACHED_ON + timedelta(weeks=110 if window else 10),
            evidence=() if evidence else PAYSLIP,
        ),
        facts(
            duplicate_of=uuid.uuid4() if duplicate else None,
            claimed_episode=episode(hours=4 if hours else 30),
        ),
    )
    expected = [
        rule
        for rule, failing in (
            (Rule.OUTSIDE_SUPPORT_WINDOW, window),
            (Rule.DUPLICATE_OUTCOME, duplicate),
            (Rule.HOURS_BELOW_MINIMUM, hours),
            (Rule.MISSING_EVIDENCE, evidence),
        )
        if failing
    ]
    assert list(evaluation.reasons) == expected
    assert evaluation.status is ClaimStatus.REJECTED


# --- the decision record ----------------------------------------------------------------


def test_the_record_lists_every_rule_with_its_facts() -> None:
    at = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    record = domain.evaluate_claim(claim(), facts()).record(at)
    assert record["status"] == "validated"
    assert record["decided_by"] == "rules"
    assert record["decided_at"] == at.isoformat()
    checks = record["rules"]["checks"]
    assert [c["rule"] for c in checks] == [r.value for r in Rule]
    window = checks[1]
    assert window["result"] == "passed"
    assert window["facts"]["attached_on"] == "2024-02-20"
    assert window["facts"]["support_window_ends_on"] == "2026-02-17"
    assert checks[3]["facts"]["hours_per_week"] == 20
    assert record["rules"]["facts_complete"] is True


def test_a_review_decision_keeps_the_rules_record() -> None:
    at = datetime(2024, 5, 2, tzinfo=UTC)
    rules = domain.evaluate_claim(claim(evidence=(EvidenceKind.SELF_DECLARATION,)), facts()).record(
        at
    )
    office = uuid.uuid4()
    record = domain.review_record(
        rules,
        decision=domain.ReviewDecision.REJECT,
        reason="no employer confirmation",
        partner_id=office,
        decided_at=at + timedelta(days=2),
    )
    assert record["status"] == "rejected"
    assert record["decided_by"] == "programme_office"
    assert record["rules"] == rules["rules"]
    assert record["programme_office"]["reason"] == "no employer confirmation"
    assert record["programme_office"]["partner_id"] == str(office)


# --- waiting for facts ---------------------------------------------------------------------


ATTACHED = Attachment(PARTICIPANT, PROVIDER, "working-well", ATTACHED_ON)
OTHERS = Attachment(PARTICIPANT, OTHER_PROVIDER, "working-well", ATTACHED_ON)
# Every fact known, for missing_facts: each test says which one it takes away.
ALL_KNOWN = {
    "programme_known": True,
    "employment_known": True,
    "employment_confirmed": True,
    "job_start_validated": False,
    "job_start_pending": False,
}


def test_missing_facts() -> None:
    attached, others, base = ATTACHED, OTHERS, ALL_KNOWN
    assert domain.missing_facts(claim(), attachment=None, **base) == (MissingFact.ATTACHMENT,)
    assert domain.missing_facts(claim(), attachment=attached, **base) == ()
    assert domain.missing_facts(
        claim(), attachment=attached, **{**base, "employment_known": False}
    ) == (MissingFact.EMPLOYMENT_EPISODE,)
    assert domain.missing_facts(
        claim(), attachment=attached, **{**base, "programme_known": False}
    ) == (MissingFact.PROGRAMME,)
    # Someone else's participant: nothing to wait for, it is not_attached.
    assert (
        domain.missing_facts(claim(), attachment=others, **{**base, "employment_known": False})
        == ()
    )
    sustained = claim(OutcomeType.SUSTAINED_13, date(2024, 9, 1))
    assert domain.missing_facts(
        sustained, attachment=attached, **{**base, "job_start_pending": True}
    ) == (MissingFact.JOB_START_DECISION,)
    assert (
        domain.missing_facts(
            sustained,
            attachment=attached,
            **{**base, "job_start_pending": True, "job_start_validated": True},
        )
        == ()
    )
    assert domain.may_decide_on_what_is_known((MissingFact.ATTACHMENT,))
    assert not domain.may_decide_on_what_is_known((MissingFact.PROGRAMME,))


def test_a_claim_resting_on_employment_waits_for_casework_to_confirm_it() -> None:
    attached, others = ATTACHED, OTHERS
    base = {**ALL_KNOWN, "employment_confirmed": False, "job_start_validated": True}
    sustained = claim(OutcomeType.SUSTAINED_13, date(2024, 9, 1))
    qualification = claim(OutcomeType.QUALIFICATION)
    assert domain.rests_on_employment(claim())  # a job start names its episode
    assert sustained.employment_id is None and domain.rests_on_employment(sustained)
    assert not domain.rests_on_employment(qualification)
    for resting in (claim(), sustained):
        assert domain.missing_facts(resting, attachment=attached, **base) == (
            MissingFact.CURRENT_EMPLOYMENT,
        )
        # Someone else's participant is not_attached whatever its employment.
        assert domain.missing_facts(resting, attachment=others, **base) == ()
    assert domain.missing_facts(qualification, attachment=attached, **base) == ()
    # After the wait, a claim is decided on the episodes heard of so far.
    assert domain.may_decide_on_what_is_known((MissingFact.CURRENT_EMPLOYMENT,))


def test_a_claim_decided_on_incomplete_facts_says_so() -> None:
    evaluation = domain.evaluate_claim(claim(), ClaimFacts(missing=(MissingFact.ATTACHMENT,)))
    record = evaluation.record(datetime.now(UTC))
    assert record["rules"]["facts_complete"] is False
    assert record["rules"]["facts_missing"] == ["attachment"]


# --- periods, tariffs and the audit sample -------------------------------------------------


@pytest.mark.parametrize(
    "period, bounds",
    [
        ("2024-05", (date(2024, 5, 1), date(2024, 6, 1))),
        ("2024-12", (date(2024, 12, 1), date(2025, 1, 1))),
        ("2024-02", (date(2024, 2, 1), date(2024, 3, 1))),
    ],
)
def test_parse_period(period, bounds) -> None:
    assert domain.parse_period(period) == bounds
    assert domain.period_of(bounds[0]) == period


@pytest.mark.parametrize(
    "bad",
    ["2024-13", "2024-00", "2024-5", "24-05", "2024/05", "", "2024-05-01", " 2024-05", "0000-01"],
)
def test_parse_period_refuses(bad) -> None:
    with pytest.raises(ValueError):
        domain.parse_period(bad)


def test_tariff_lookup() -> None:
    assert TERMS.tariff_for("job_start") == 120000
    assert TERMS.tariff_for("qualification") is None


def test_audit_sample_is_reproducible_and_sized_by_ceiling() -> None:
    ids = [uuid.uuid4() for _ in range(31)]
    rate = Fraction(1, 10)
    first = domain.audit_sample("wwe", "2024-05", ids, rate)
    again = domain.audit_sample("wwe", "2024-05", list(reversed(ids)), rate)
    assert first == again
    assert len(first) == 4  # ceil(3.1)
    assert set(first) <= set(ids)
    assert domain.audit_sample("wwe", "2024-05", ids[:3], rate) != []
    assert len(domain.audit_sample("wwe", "2024-05", ids, Fraction(1))) == 31
    assert domain.audit_sample("wwe", "2024-05", [], rate) == []


def test_audit_sample_size_is_exact() -> None:
    # 0.1 * 30 in floating point is 3.0000000000000004; the sample must be 3, not 4.
    assert domain.audit_sample_size(30, Fraction("0.1")) == 3
    assert domain.audit_sample_size(1, Fraction("0.01")) == 1
    assert domain.audit_sample_size(0, Fraction("0.5")) == 0


def test_audit_sample_depends_on_programme_and_period() -> None:
    ids = [uuid.uuid4() for _ in range(200)]
    a = domain.audit_sample("wwe", "2024-05", ids, Fraction(1, 10))
    b = domain.audit_sample("wwe", "2024-06", ids, Fraction(1, 10))
    c = domain.audit_sample("other", "2024-05", ids, Fraction(1, 10))
    assert a != b and a != c
