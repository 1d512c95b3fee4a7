"""The outcomes service's rules (contract §4, §5): plain functions and dataclasses, no I/O.

A claim is decided by :func:`evaluate_claim` on a :class:`ClaimFacts` snapshot; the
result carries every rule checked, in the contract's order, with the facts it used, so
the decision can be stored, shown to a provider who disputes it, and re-run.

Facts about a participant (attachment date, employment, job start) are used only for the
provider the participant is attached to. A claim by any other provider fails
``not_attached`` and the rules that would need those facts are recorded as not checked,
so a claim can never reveal anything about someone else's participant.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any


class OutcomeType(StrEnum):
    JOB_START = "job_start"
    SUSTAINED_13 = "sustained_13"
    SUSTAINED_26 = "sustained_26"
    SUSTAINED_50 = "sustained_50"
    QUALIFICATION = "qualification"
    VOLUNTEERING_START = "volunteering_start"
    EDUCATION_START = "education_start"

    @property
    def sustained_weeks(self) -> int | None:
        """N of a ``sustained_N`` type; ``None`` for every other type."""
        if self.value.startswith("sustained_"):
            return int(self.value.removeprefix("sustained_"))
        return None


class EvidenceKind(StrEnum):
    PAYSLIP = "payslip"
    EMPLOYER_CONFIRMATION = "employer_confirmation"
    HMRC_RTI = "hmrc_rti"
    CERTIFICATE = "certificate"
    SELF_DECLARATION = "self_declaration"


class ClaimStatus(StrEnum):
    SUBMITTED = "submitted"
    REVIEW = "review"
    VALIDATED = "validated"
    REJECTED = "rejected"


# A claim in one of these holds its participant's once-per-type slot.
PENDING_STATUSES = (ClaimStatus.SUBMITTED, ClaimStatus.REVIEW)
SLOT_STATUSES = (*PENDING_STATUSES, ClaimStatus.VALIDATED)


class Rule(StrEnum):
    """The contract's rules, declared in the order they are checked and listed."""

    NOT_ATTACHED = "not_attached"
    OUTSIDE_SUPPORT_WINDOW = "outside_support_window"
    DUPLICATE_OUTCOME = "duplicate_outcome"
    HOURS_BELOW_MINIMUM = "hours_below_minimum"
    NO_JOB_START = "no_job_start"
    NOT_SUSTAINED = "not_sustained"
    MISSING_EVIDENCE = "missing_evidence"


RULE_ORDER: tuple[Rule, ...] = tuple(Rule)


class Result(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"  # the rule is not for this type of claim
    NOT_CHECKED = "not_checked"  # the facts it needs are not available to this claim


class MissingFact(StrEnum):
    """Facts a claim may still be waiting for (they arrive by events, §8)."""

    ATTACHMENT = "attachment"
    PROGRAMME = "programme"
    EMPLOYMENT_EPISODE = "employment_episode"
    # Casework's answer giving the participant's employment as it stood after the claim
    # was made: an episode's end recorded just before the claim may still be on its way.
    CURRENT_EMPLOYMENT = "current_employment"
    JOB_START_DECISION = "job_start_decision"


RULE_SET = "partner-api-4.v1"
ATTACHMENT_KIND = "attachment"


@dataclass(frozen=True)
class ProgrammeTerms:
    code: str
    support_weeks: int
    min_job_hours: float
    sustainment_weeks: int
    tariff: dict[str, int]

    def tariff_for(self, kind: str) -> int | None:
        """The amount a line of ``kind`` accrues; ``None`` if the programme pays nothing for it."""
        amount = self.tariff.get(kind)
        return int(amount) if amount is not None else None


@dataclass(frozen=True)
class Attachment:
    participant_id: uuid.UUID
    provider_id: uuid.UUID
    programme: str
    attached_on: date


@dataclass(frozen=True)
class Episode:
    """An employment episode; ``ended_on`` is the last day in work, ``None`` while ongoing."""

    episode_id: uuid.UUID
    started_on: date
    ended_on: date | None
    hours_per_week: float = 0.0
    self_employed: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "episode_id": str(self.episode_id),
            "started_on": self.started_on.isoformat(),
            "ended_on": _iso(self.ended_on),
            "hours_per_week": self.hours_per_week,
            "self_employed": self.self_employed,
        }


@dataclass(frozen=True)
class JobStart:
    """The participant's validated job start claim."""

    claim_id: uuid.UUID
    achieved_on: date


@dataclass(frozen=True)
class Claim:
    """What the provider claimed: the parts of a claim the rules look at."""

    claim_id: uuid.UUID
    participant_id: uuid.UUID
    provider_id: uuid.UUID
    type: OutcomeType
    achieved_on: date
    employment_id: uuid.UUID | None
    evidence_kinds: tuple[EvidenceKind, ...]


@dataclass(frozen=True)
class ClaimFacts:
    """Everything known, when deciding, about the claim's participant and programme.

    ``claimed_episode`` is the episode named by ``employment_id`` if it is one of the
    participant's; ``duplicate_of`` the claim already holding the participant's slot for
    this type when this one arrived; ``missing`` the facts still not arrived (a claim is
    decided on incomplete facts only once its bounded wait is over).
    """

    attachment: Attachment | None = None
    programme: ProgrammeTerms | None = None
    duplicate_of: uuid.UUID | None = None
    claimed_episode: Episode | None = None
    episodes: tuple[Episode, ...] = ()
    job_start: JobStart | None = None
    missing: tuple[MissingFact, ...] = ()


@dataclass(frozen=True)
class RuleCheck:
    rule: Rule
    result: Result
    facts: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "rule": self.rule.value,
            "result": self.result.value,
            "facts": self.facts,
            "note": self.note,
        }


@dataclass(frozen=True)
class Evaluation:
    status: ClaimStatus
    reasons: tuple[Rule, ...]
    checks: tuple[RuleCheck, ...]
    missing: tuple[MissingFact, ...]

    def record(self, decided_at: datetime) -> dict[str, Any]:
        """The decision record kept on the claim (and shown on GET)."""
        return {
            "status": self.status.value,
            "decided_by": "rules",
            "decided_at": decided_at.isoformat(),
            "rules": {
                "rule_set": RULE_SET,
                "checked_at": decided_at.isoformat(),
                "outcome": self.status.value,
                "facts_complete": not self.missing,
                "facts_missing": [m.value for m in self.missing],
                "checks": [check.record() for check in self.checks],
            },
            "programme_office": None,
        }


class ReviewDecision(StrEnum):
    VALIDATE = "validate"
    REJECT = "reject"

    @property
    def status(self) -> ClaimStatus:
        return ClaimStatus.VALIDATED if self is ReviewDecision.VALIDATE else ClaimStatus.REJECTED


def review_record(
    previous: dict[str, Any] | None,
    *,
    decision: ReviewDecision,
    reason: str,
    partner_id: uuid.UUID,
    decided_at: datetime,
) -> dict[str, Any]:
    """The decision record after the programme office decided a claim in review; the
    rules' record it was sent to review with is kept as it was."""
    record = dict(previous or {})
    record.update(
        {
            "status": decision.status.value,
            "decided_by": "programme_office",
            "decided_at": decided_at.isoformat(),
            "programme_office": {
                "decision": decision.value,
                "reason": reason,
                "partner_id": str(partner_id),
                "decided_at": decided_at.isoformat(),
            },
        }
    )
    return record


def attached_to_claimant(claim: Claim, attachment: Attachment | None) -> bool:
    return attachment is not None and attachment.provider_id == claim.provider_id


# --- the rules ------------------------------------------------------------------------

_NOT_ATTACHED_NOTE = "not checked: the participant is not attached to the claiming provider"


def evaluate_claim(claim: Claim, facts: ClaimFacts) -> Evaluation:
    """Check every rule of §4 in order; the failing ones, in that order, are the reasons."""
    attached = attached_to_claimant(claim, facts.attachment)
    checks = (
        _check_attached(claim, facts, attached),
        _check_support_window(claim, facts, attached),
        _check_duplicate(facts),
        _check_hours(claim, facts, attached),
        *_check_sustainment(claim, facts, attached),
        _check_evidence(claim),
    )
    assert tuple(c.rule for c in checks) == RULE_ORDER
    reasons = tuple(c.rule for c in checks if c.result is Result.FAILED)
    if reasons:
        status = ClaimStatus.REJECTED
    elif all(kind is EvidenceKind.SELF_DECLARATION for kind in claim.evidence_kinds):
        # Only the participant's word for it: a person at the programme office decides.
        status = ClaimStatus.REVIEW
    else:
        status = ClaimStatus.VALIDATED
    return Evaluation(status, reasons, checks, facts.missing)


def _check_attached(claim: Claim, facts: ClaimFacts, attached: bool) -> RuleCheck:
    return RuleCheck(
        Rule.NOT_ATTACHED,
        Result.PASSED if attached else Result.FAILED,
        {"attached_to_claimant": attached},
    )


def _check_support_window(claim: Claim, facts: ClaimFacts, attached: bool) -> RuleCheck:
    rule = Rule.OUTSIDE_SUPPORT_WINDOW
    if claim.type.sustained_weeks is not None:
        return RuleCheck(
            rule,
            Result.NOT_APPLICABLE,
            note="not checked for sustained outcomes: their window runs from the job start",
        )
    if not attached:
        return RuleCheck(rule, Result.NOT_CHECKED, note=_NOT_ATTACHED_NOTE)
    assert facts.attachment is not None
    if facts.programme is None:
        return RuleCheck(rule, Result.NOT_CHECKED, note="the programme's terms are not known")
    start = facts.attachment.attached_on
    end = start + timedelta(weeks=facts.programme.support_weeks)
    inside = start <= claim.achieved_on <= end
    return RuleCheck(
        rule,
        Result.PASSED if inside else Result.FAILED,
        {
            "achieved_on": claim.achieved_on.isoformat(),
            "attached_on": start.isoformat(),
            "support_weeks": facts.programme.support_weeks,
            "support_window_ends_on": end.isoformat(),
        },
    )


def _check_duplicate(facts: ClaimFacts) -> RuleCheck:
    duplicate = facts.duplicate_of is not None
    return RuleCheck(
        Rule.DUPLICATE_OUTCOME,
        Result.FAILED if duplicate else Result.PASSED,
        {"existing_claim_id": str(facts.duplicate_of) if duplicate else None},
    )


def _check_hours(claim: Claim, facts: ClaimFacts, attached: bool) -> RuleCheck:
    rule = Rule.HOURS_BELOW_MINIMUM
    if claim.type is not OutcomeType.JOB_START:
        return RuleCheck(rule, Result.NOT_APPLICABLE)
    if not attached:
        return RuleCheck(rule, Result.NOT_CHECKED, note=_NOT_ATTACHED_NOTE)
    employment_id = str(claim.employment_id) if claim.employment_id else None
    episode = facts.claimed_episode
    if episode is None:
        # Never pay a job start on a job nobody recorded: unknown hours cannot meet the minimum.
        return RuleCheck(
            rule,
            Result.FAILED,
            {"employment_id": employment_id, "episode_known": False},
            note="the employment episode is not known as one of this participant's",
        )
    if facts.programme is None:
        return RuleCheck(rule, Result.NOT_CHECKED, note="the programme's terms are not known")
    below = episode.hours_per_week < facts.programme.min_job_hours and not episode.self_employed
    return RuleCheck(
        rule,
        Result.FAILED if below else Result.PASSED,
        {
            "employment_id": employment_id,
            "episode_known": True,
            "hours_per_week": episode.hours_per_week,
            "self_employed": episode.self_employed,
            "min_job_hours": facts.programme.min_job_hours,
        },
    )


def _check_sustainment(
    claim: Claim, facts: ClaimFacts, attached: bool
) -> tuple[RuleCheck, RuleCheck]:
    weeks = claim.type.sustained_weeks
    if weeks is None:
        return (
            RuleCheck(Rule.NO_JOB_START, Result.NOT_APPLICABLE),
            RuleCheck(Rule.NOT_SUSTAINED, Result.NOT_APPLICABLE),
        )
    if not attached:
        return (
            RuleCheck(Rule.NO_JOB_START, Result.NOT_CHECKED, note=_NOT_ATTACHED_NOTE),
            RuleCheck(Rule.NOT_SUSTAINED, Result.NOT_CHECKED, note=_NOT_ATTACHED_NOTE),
        )
    job_start = facts.job_start
    if job_start is None:
        return (
            RuleCheck(Rule.NO_JOB_START, Result.FAILED, {"job_start_claim_id": None}),
            RuleCheck(
                Rule.NOT_SUSTAINED,
                Result.NOT_CHECKED,
                note="not checked: there is no validated job start to measure from",
            ),
        )
    has_start = RuleCheck(
        Rule.NO_JOB_START,
        Result.PASSED,
        {
            "job_start_claim_id": str(job_start.claim_id),
            "job_start_achieved_on": job_start.achieved_on.isoformat(),
        },
    )
    window = sustainment_window(job_start.achieved_on, claim.achieved_on, weeks)
    covered = covered_days(((e.started_on, e.ended_on) for e in facts.episodes), *window)
    required = weeks * 7
    sustained = RuleCheck(
        Rule.NOT_SUSTAINED,
        Result.PASSED if covered >= required else Result.FAILED,
        {
            "window_starts_on": window[0].isoformat(),
            "window_ends_before": window[1].isoformat(),
            "window_days": (window[1] - window[0]).days,
            "required_days": required,
            "covered_days": covered,
            "episodes": [
                {
                    "episode_id": str(e.episode_id),
                    "started_on": e.started_on.isoformat(),
                    "ended_on": _iso(e.ended_on),
                }
                for e in sorted(facts.episodes, key=lambda e: (e.started_on, str(e.episode_id)))
            ],
        },
    )
    return has_start, sustained


def _check_evidence(claim: Claim) -> RuleCheck:
    kinds = sorted({k.value for k in claim.evidence_kinds})
    return RuleCheck(
        Rule.MISSING_EVIDENCE,
        Result.PASSED if claim.evidence_kinds else Result.FAILED,
        {"evidence_items": len(claim.evidence_kinds), "kinds": kinds},
    )


# --- sustainment: "50 weeks in work out of 54" ------------------------------------------


def sustainment_window(
    job_start_on: date, claim_achieved_on: date, weeks: int
) -> tuple[date, date]:
    """``[start, end)``: from the job start, ending before the earlier of the claim's
    ``achieved_on`` and the job start + (N+4) weeks. Empty if the claim predates the start."""
    end = min(claim_achieved_on, job_start_on + timedelta(weeks=weeks + 4))
    return job_start_on, max(end, job_start_on)


def covered_days(
    spans: Iterable[tuple[date, date | None]], window_start: date, window_end: date
) -> int:
    """Days of ``[window_start, window_end)`` inside at least one employment span.

    A span is ``(started_on, ended_on)`` with ``ended_on`` the last day in work
    (inclusive) or ``None`` for an ongoing job, which then runs to the window's end.
    Gaps are not counted, overlaps count once, a span ending before it starts counts
    nothing.
    """
    if window_end <= window_start:
        return 0
    clipped: list[tuple[date, date]] = []
    for started_on, ended_on in spans:
        start = max(started_on, window_start)
        if ended_on is None or ended_on >= window_end:
            end = window_end
        else:
            end = ended_on + timedelta(days=1)  # exclusive
        if start < end:
            clipped.append((start, end))
    clipped.sort()
    total = 0
    current_start: date | None = None
    current_end: date | None = None
    for start, end in clipped:
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += (current_end - current_start).days
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_start is not None and current_end is not None:
        total += (current_end - current_start).days
    return total


# --- waiting for facts ------------------------------------------------------------------


def rests_on_employment(claim: Claim) -> bool:
    """A job start is judged on its episode, a sustained claim on all of them."""
    return claim.employment_id is not None or claim.type.sustained_weeks is not None


def missing_facts(
    claim: Claim,
    *,
    attachment: Attachment | None,
    programme_known: bool,
    employment_known: bool,
    employment_confirmed: bool,
    job_start_validated: bool,
    job_start_pending: bool,
) -> tuple[MissingFact, ...]:
    """Facts the claim depends on that have not arrived yet (empty: decide now).

    ``employment_known``: the episode named by ``employment_id`` has been heard of at
    all. ``employment_confirmed``: casework has answered with the participant's
    employment as it stood after the claim arrived. Once the participant is known to be
    another provider's, nothing more can change the decision (``not_attached``), so
    nothing else is waited for.
    """
    if attachment is None:
        return (MissingFact.ATTACHMENT,)
    if not attached_to_claimant(claim, attachment):
        return ()
    missing: list[MissingFact] = []
    if not programme_known:
        missing.append(MissingFact.PROGRAMME)
    if claim.employment_id is not None and not employment_known:
        missing.append(MissingFact.EMPLOYMENT_EPISODE)
    if rests_on_employment(claim) and not employment_confirmed:
        missing.append(MissingFact.CURRENT_EMPLOYMENT)
    if claim.type.sustained_weeks is not None and not job_start_validated and job_start_pending:
        missing.append(MissingFact.JOB_START_DECISION)
    return tuple(missing)


def may_decide_on_what_is_known(missing: Sequence[MissingFact]) -> bool:
    """After the bounded wait a claim is decided on what is known, except without the
    programme's terms: no tariff, no support window. Programmes are defined before any
    referral can be made, so this only guards against a lost definition."""
    return MissingFact.PROGRAMME not in missing


# --- statements and the audit sample -----------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(period: str) -> tuple[date, date]:
    """``"2024-05"`` -> ``(2024-05-01, 2024-06-01)``; raises ``ValueError`` if malformed."""
    match = _PERIOD.match(period)
    if not match:
        raise ValueError("must be a month as YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    if year < 1900:
        raise ValueError("must be a month as YYYY-MM")
    start = date(year, month, 1)
    end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return start, end


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def statement_total(amounts: Iterable[int]) -> int:
    return sum(amounts)


def audit_rank(programme: str, period: str, claim_id: uuid.UUID) -> str:
    """A claim's place in the audit draw: a hash nobody can steer and anybody can re-run."""
    return hashlib.sha256(f"{programme}:{period}:{claim_id}".encode()).hexdigest()


def audit_sample_size(population: int, rate: Fraction) -> int:
    """``ceil(rate * population)``, exactly (no float rounding): every non-empty period
    gets at least one claim checked."""
    return min(population, math.ceil(rate * population))


def audit_sample(
    programme: str, period: str, claim_ids: Iterable[uuid.UUID], rate: Fraction
) -> list[uuid.UUID]:
    """The claims to check: the ``ceil(rate * n)`` with the lowest :func:`audit_rank`,
    in rank order. The same population always gives the same sample."""
    ranked = sorted(set(claim_ids), key=lambda cid: audit_rank(programme, period, cid))
    return ranked[: audit_sample_size(len(ranked), rate)]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None
