"""What the contract's claim rules (§4) will decide, claim by claim, in the order the
runner posts them. Written from the contract, independent of the outcomes service."""

from __future__ import annotations

from datetime import date

from pathways.simulate.programme import MIN_JOB_HOURS, SUPPORT_WEEKS
from pathways.simulate.records import Claim, Participant
from pathways.simulate.rules import in_support_window, is_sustained, sustained_weeks


def judge_claims(participant: Participant) -> None:
    """Decide every claim of the participant as the contract's rules would, in the order
    the runner posts them: round 1, the programme office's reviews, round 2, reviews."""
    held: dict[str, str] = {}  # type -> "validated" | "review": who holds each slot
    job_start_on: date | None = None
    spans = participant.spans()
    for round_ in (1, 2):
        in_review: list[Claim] = []
        for claim in (c for c in participant.claims if c.round == round_):
            reasons: list[str] = []
            weeks = sustained_weeks(claim.type)
            if claim.claimant != participant.provider:
                reasons.append("not_attached")
                if claim.type in held:
                    reasons.append("duplicate_outcome")
                if not claim.evidence:
                    reasons.append("missing_evidence")
            else:
                if weeks is None and not in_support_window(
                    participant.attached_on, claim.achieved_on, SUPPORT_WEEKS
                ):
                    reasons.append("outside_support_window")
                if claim.type in held:
                    reasons.append("duplicate_outcome")
                if claim.type == "job_start":
                    assert claim.episode is not None
                    episode = participant.episodes[claim.episode]
                    if episode.hours_per_week < MIN_JOB_HOURS and not episode.self_employed:
                        reasons.append("hours_below_minimum")
                if weeks is not None:
                    if job_start_on is None:
                        reasons.append("no_job_start")
                    elif not is_sustained(spans, job_start_on, claim.achieved_on, weeks):
                        reasons.append("not_sustained")
                if not claim.evidence:
                    reasons.append("missing_evidence")
            claim.reasons = tuple(reasons)
            if reasons:
                claim.decision = claim.final = "rejected"
            elif all(e.kind == "self_declaration" for e in claim.evidence):
                claim.decision = "review"
                held[claim.type] = "review"
                in_review.append(claim)
            else:
                claim.decision = claim.final = "validated"
                held[claim.type] = "validated"
                if claim.type == "job_start":
                    job_start_on = claim.achieved_on
        for claim in in_review:
            if claim.review_decision == "validate":
                claim.final = "validated"
                held[claim.type] = "validated"
                if claim.type == "job_start":
                    job_start_on = claim.achieved_on
            else:
                claim.final = "rejected"
                del held[claim.type]
