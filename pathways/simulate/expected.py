"""The report figures a story must produce, computed from the story alone by the
contract's definitions (§6) — never from what the platform answered.

Figures are plain dicts shaped like the reports' JSON, so comparing is key by key; rates
are :class:`~decimal.Decimal` rounded half-up to 4 places as the contract says.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pathways.simulate.programme import SUSTAINMENT_WEEKS, TARIFF
from pathways.simulate.rules import SEVERE_SCORE, add_months, age_band, age_on, quarter_of, rate
from pathways.simulate.story import BARRIERS, Assessment, Participant, Referral, Story

COUNTS = (
    "referrals",
    "accepted",
    "attachments",
    "job_starts",
    "sustained",
    "sustainment_eligible",
)
PERFORMANCE_FIELDS = (
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
GROUP_BY = (
    "local_authority",
    "provider",
    "source",
    "benefit",
    "attachment_quarter",
    "gender",
    "age_band",
)
COHORT_MONTHS = 24


@dataclass(frozen=True)
class ParticipantOutcome:
    """What the reports count of one participant."""

    participant: Participant
    job_start_on: date | None
    sustained_on: date | None
    accruals: tuple[tuple[date, int], ...]


def outcome_of(participant: Participant) -> ParticipantOutcome:
    job_start_on = sustained_on = None
    accruals = [(participant.attached_on, TARIFF["attachment"])]
    for claim in participant.claims:
        if claim.final != "validated":
            continue
        accruals.append((claim.achieved_on, TARIFF[claim.type]))
        if claim.type == "job_start":
            job_start_on = claim.achieved_on
        elif claim.type == f"sustained_{SUSTAINMENT_WEEKS}":
            sustained_on = claim.achieved_on
    return ParticipantOutcome(participant, job_start_on, sustained_on, tuple(accruals))


def referral_dimensions(referral: Referral, provider_key: dict[str, str]) -> dict[str, str]:
    person = referral.person
    dims = {
        "local_authority": person.local_authority,
        "source": referral.source,
        "benefit": person.benefit,
    }
    if person.gender is not None:
        dims["gender"] = person.gender
    band = age_band(age_on(person.date_of_birth, referral.referred_on))
    if band is not None:
        dims["age_band"] = band
    if referral.provider is not None:
        dims["provider"] = provider_key.get(referral.provider, referral.provider)
    return dims


def participant_dimensions(
    participant: Participant, provider_key: dict[str, str]
) -> dict[str, str]:
    dims = referral_dimensions(participant.referral, provider_key)
    dims["provider"] = provider_key.get(participant.provider, participant.provider)
    dims["attachment_quarter"] = quarter_of(participant.attached_on)
    return dims


def performance(
    story: Story,
    *,
    as_of: date | None = None,
    group_by: str | None = None,
    provider_key: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``GET /v1/reports/performance`` rows by key (``"all"`` without ``group_by``).

    ``provider_key`` maps provider handles to the ids the platform gave them (the
    ``provider`` grouping's keys); without it the handles are the keys.
    """
    as_of = as_of or story.as_of
    keys = provider_key or {}
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def key_of(dims: dict[str, str]) -> str | None:
        return "all" if group_by is None else dims.get(group_by)

    for referral in story.referrals:
        if referral.decision == "duplicate" or referral.referred_on > as_of:
            continue
        key = key_of(referral_dimensions(referral, keys))
        if key is None or group_by == "attachment_quarter":
            continue
        sums[key]["referrals"] += 1
        if referral.decision == "accepted":
            sums[key]["accepted"] += 1
    eligible_by = as_of - timedelta(days=SUSTAINMENT_WEEKS * 7)
    for participant in story.participants:
        if participant.attached_on > as_of:
            continue
        key = key_of(participant_dimensions(participant, keys))
        if key is None:
            continue
        outcome = outcome_of(participant)
        group = sums[key]
        group["attachments"] += 1
        if outcome.job_start_on is not None and outcome.job_start_on <= as_of:
            group["job_starts"] += 1
            if outcome.job_start_on <= eligible_by:
                group["sustainment_eligible"] += 1
        if outcome.sustained_on is not None and outcome.sustained_on <= as_of:
            group["sustained"] += 1
        for accrued_on, amount in outcome.accruals:
            if accrued_on <= as_of:
                group["accrual_lines"] += 1
                group["accrued_pence"] += amount
    if group_by is None:
        sums.setdefault("all", defaultdict(int))
    by_quarter = group_by == "attachment_quarter"
    rows: dict[str, dict[str, Any]] = {}
    for key in sorted(sums):
        s = sums[key]
        if group_by is not None and not any(s[c] for c in (*COUNTS, "accrual_lines")):
            continue
        rows[key] = {
            "referrals": None if by_quarter else s["referrals"],
            "accepted": None if by_quarter else s["accepted"],
            "attachments": s["attachments"],
            "attachment_rate": None if by_quarter else rate(s["attachments"], s["accepted"]),
            "job_starts": s["job_starts"],
            "job_start_rate": rate(s["job_starts"], s["attachments"]),
            "sustained": s["sustained"],
            "sustainment_eligible": s["sustainment_eligible"],
            "sustainment_rate": rate(s["sustained"], s["sustainment_eligible"]),
            "accrued_pence": s["accrued_pence"],
        }
    return rows


def cohorts(story: Story, *, as_of: date | None = None) -> dict[str, dict[str, Any]]:
    """``GET /v1/reports/cohorts``: by attachment quarter, oldest first."""
    as_of = as_of or story.as_of
    members: dict[str, list[ParticipantOutcome]] = defaultdict(list)
    for participant in story.participants:
        if participant.attached_on <= as_of:
            members[quarter_of(participant.attached_on)].append(outcome_of(participant))
    out: dict[str, dict[str, Any]] = {}
    for cohort in sorted(members):
        group = members[cohort]
        last = max(o.participant.attached_on for o in group)
        by_month: list[Decimal | None] = []
        for m in range(1, COHORT_MONTHS + 1):
            if add_months(last, m) > as_of:
                by_month.append(None)
                continue
            started = sum(
                1
                for o in group
                if o.job_start_on is not None
                and o.job_start_on <= add_months(o.participant.attached_on, m)
            )
            by_month.append(rate(started, len(group)))
        out[cohort] = {"attachments": len(group), "job_start_rate_by_month": by_month}
    return out


def _latest_review(participant: Participant, as_of: date) -> Assessment | None:
    """The latest ``review`` or ``exit`` assessment dated on or before ``as_of`` (the
    story records them in date order, so the last one wins a tie, as posted)."""
    latest = None
    for assessment in participant.assessments[1:]:
        if assessment.assessed_on <= as_of and (
            latest is None or assessment.assessed_on >= latest.assessed_on
        ):
            latest = assessment
    return latest


def barriers(story: Story, *, as_of: date | None = None) -> dict[str, Any]:
    """``GET /v1/reports/barriers``: rows by barrier (in the report's order) and means."""
    as_of = as_of or story.as_of
    sums: dict[str, dict[str, int]] = {b: defaultdict(int) for b in BARRIERS}
    both = severe_initial = severe_latest = 0
    for participant in story.participants:
        initial = participant.initial
        if participant.attached_on > as_of or initial.assessed_on > as_of:
            continue
        latest = _latest_review(participant, as_of)
        for barrier, score in initial.barriers.items():
            row = sums[barrier]
            row["scored"] += 1
            if score >= SEVERE_SCORE:
                row["severe"] += 1
                if latest is not None and barrier in latest.barriers:
                    row["reviewed"] += 1
                    if latest.barriers[barrier] < score:
                        row["improved"] += 1
        if latest is not None:
            both += 1
            severe_initial += len(initial.severe())
            severe_latest += len(latest.severe())
    rows = []
    for barrier in BARRIERS:
        s = sums[barrier]
        rows.append(
            {
                "barrier": barrier,
                "scored": s["scored"],
                "severe_at_attachment": s["severe"],
                "severe_share": rate(s["severe"], s["scored"]),
                "reviewed": s["reviewed"],
                "improved": s["improved"],
                "improved_rate": rate(s["improved"], s["reviewed"]),
            }
        )
    rows.sort(key=lambda r: (r["severe_share"] is None, -(r["severe_share"] or 0), r["barrier"]))
    return {
        "rows": rows,
        "mean_severe_at_attachment": rate(severe_initial, both),
        "mean_severe_at_latest_review": rate(severe_latest, both),
    }


@dataclass(frozen=True)
class Expectations:
    """Everything the reports should say about the story, as of its date."""

    performance: dict[str, dict[str, Any]]
    by_group: dict[str, dict[str, dict[str, Any]]]
    cohorts: dict[str, dict[str, Any]]
    barriers: dict[str, Any]


def expectations(story: Story, provider_key: dict[str, str] | None = None) -> Expectations:
    return Expectations(
        performance=performance(story, provider_key=provider_key),
        by_group={
            group: performance(story, group_by=group, provider_key=provider_key)
            for group in GROUP_BY
        },
        cohorts=cohorts(story),
        barriers=barriers(story),
    )


def referral_rate(story: Story) -> Decimal | None:
    """Attachments per referral (the report's "69% attached", ¶3.2)."""
    headline = performance(story)["all"]
    return rate(headline["attachments"], headline["referrals"])
