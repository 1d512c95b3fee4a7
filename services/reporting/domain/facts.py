"""What the projections know about each referral and participant, and the vocabulary
of the programme those facts are counted in.

Events of one aggregate can arrive in any order (a retried event lands after a later
one), so every fact is a merge that converges whatever the order: flags that, once set,
stay set ("ever accepted"), the latest status by ``changed_at``, the earliest validated
claim of each type. The SQL in :mod:`services.reporting.store.facts` applies exactly
these merges; the functions here say what one event contributes to them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.reporting.domain.calendar import quarter_of
from shared.events.casework import BARRIERS, AssessmentRecorded, ParticipantAttached
from shared.events.gateway import ProgrammeDefined
from shared.events.outcomes import AccrualRecorded, ClaimDecided
from shared.events.referrals import ReferralStatusChanged

BARRIER_SET = frozenset(BARRIERS)
SEVERE_SCORE = 4  # 4, 5 and 6 count as severe (contract §3)

# Contract §6 group_by keys.
GROUP_BY: tuple[str, ...] = (
    "local_authority",
    "provider",
    "source",
    "benefit",
    "attachment_quarter",
    "gender",
    "age_band",
)
# The dimensions a referral's own facts carry (attachment_quarter is a participant's).
REFERRAL_DIMENSIONS: tuple[str, ...] = (
    "local_authority",
    "source",
    "benefit",
    "gender",
    "age_band",
)
ALL = "all"

SUSTAINMENT_TYPES: dict[int, str] = {13: "sustained_13", 26: "sustained_26", 50: "sustained_50"}

# Statuses that show a referral was accepted (routed to a provider) at some point.
_ACCEPTED_STATUSES = frozenset({"accepted", "attached"})
# When two status events share a changed_at (referrals decides a new referral in the
# same instant it receives it), the later step of the lifecycle is the later status.
STATUS_RANK: dict[str, int] = {
    "received": 0,
    "accepted": 1,
    "rejected": 1,
    "duplicate": 1,
    "attached": 2,
    "declined": 2,
    "withdrawn": 2,
}
# A claim's review comes before its final decision.
CLAIM_STATUS_RANK: dict[str, int] = {"submitted": 0, "review": 1, "validated": 2, "rejected": 2}


def ever_accepted_evidence(payload: ReferralStatusChanged) -> bool:
    """Does this one event show the referral was accepted at some time?

    ``accepted``/``attached`` say so directly; ``declined``/``withdrawn`` only when they
    came from ``accepted`` (a referrer may withdraw a referral still ``received``).
    """
    return (
        payload.status in _ACCEPTED_STATUSES
        or payload.previous_status in _ACCEPTED_STATUSES
        or (payload.status in ("declined", "withdrawn") and payload.provider_id is not None)
    )


def referral_row(payload: ReferralStatusChanged) -> dict[str, Any]:
    """One status event as a row of ``referrals`` (merged by the upsert)."""
    return {
        "referral_id": payload.referral_id,
        "programme": payload.programme,
        "referred_on": payload.referred_on,
        "source": payload.source,
        "local_authority": payload.local_authority,
        "benefit": payload.benefit,
        "gender": payload.gender,
        "age_band": payload.age_band,
        "provider_id": payload.provider_id,
        "status": payload.status,
        "status_rank": STATUS_RANK.get(payload.status, 0),
        "status_changed_at": payload.changed_at,
        "ever_accepted": ever_accepted_evidence(payload),
        "ever_duplicate": payload.status == "duplicate",
    }


@dataclass(frozen=True)
class ReferralFacts:
    referral_id: uuid.UUID
    programme: str
    referred_on: date
    source: str | None
    local_authority: str | None
    benefit: str | None
    gender: str | None
    age_band: str | None
    provider_id: uuid.UUID | None
    ever_accepted: bool
    ever_duplicate: bool

    def dimensions(self) -> dict[str, str]:
        """Group-by keys this referral has a value for."""
        values = {
            "local_authority": self.local_authority,
            "source": self.source,
            "benefit": self.benefit,
            "gender": self.gender,
            "age_band": self.age_band,
            "provider": str(self.provider_id) if self.provider_id else None,
        }
        return {dim: key for dim, key in values.items() if key}


@dataclass(frozen=True)
class Assessment:
    assessment_id: uuid.UUID
    kind: str  # initial | review | exit
    assessed_on: date
    recorded_at: datetime  # when casework recorded it: orders two reviews of one day
    barriers: dict[str, int]

    @property
    def order(self) -> tuple[date, datetime, str]:
        return (self.assessed_on, self.recorded_at, str(self.assessment_id))

    def severe_count(self) -> int:
        return sum(1 for b, s in self.barriers.items() if b in BARRIER_SET and s >= SEVERE_SCORE)


@dataclass(frozen=True)
class ParticipantFacts:
    """A participant as the projections know them.

    The row exists as soon as any event names the participant (a claim can arrive
    before the attachment); it counts as a participant only once ``attached_on`` is
    known. Referral dimensions are copied from the referral once both are known.
    """

    participant_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID | None = None
    referral_id: uuid.UUID | None = None
    attached_on: date | None = None
    job_start_on: date | None = None
    sustained_on: dict[int, date] = field(default_factory=dict)  # 13/26/50 -> achieved_on
    referral_dimensions: dict[str, str] = field(default_factory=dict)
    # accrued_on -> (ledger lines, pence)
    accruals: dict[date, tuple[int, int]] = field(default_factory=dict)
    assessments: tuple[Assessment, ...] = ()

    def dimensions(self) -> dict[str, str]:
        """Group-by keys this participant has a value for.

        A participant groups under its referral's local authority, source, benefit,
        gender and age band, under the provider that attached it, and under the
        quarter of its ``attached_on``.
        """
        values = dict(self.referral_dimensions)
        if self.provider_id is not None:
            values["provider"] = str(self.provider_id)
        if self.attached_on is not None:
            values["attachment_quarter"] = quarter_of(self.attached_on)
        return values


def programme_row(payload: ProgrammeDefined) -> dict[str, Any]:
    return {
        "code": payload.code,
        "name": payload.name,
        "sustainment_weeks": payload.sustainment_weeks,
        "job_start_target": payload.targets.get("job_start_rate"),
        "sustainment_target": payload.targets.get("sustainment_rate"),
        "definition": payload.model_dump(mode="json"),
    }


def attachment_row(payload: ParticipantAttached) -> dict[str, Any]:
    return {
        "participant_id": payload.participant_id,
        "programme": payload.programme,
        "provider_id": payload.provider_id,
        "referral_id": payload.referral_id,
        "attached_on": payload.attached_on,
    }


def claim_row(payload: ClaimDecided) -> dict[str, Any]:
    return {
        "claim_id": payload.claim_id,
        "participant_id": payload.participant_id,
        "programme": payload.programme,
        "type": payload.type,
        "status": payload.status,
        "status_rank": CLAIM_STATUS_RANK.get(payload.status, 0),
        "achieved_on": payload.achieved_on,
        "decided_at": payload.decided_at,
    }


def accrual_row(payload: AccrualRecorded) -> dict[str, Any]:
    return {
        "line_id": payload.line_id,
        "participant_id": payload.participant_id,
        "programme": payload.programme,
        "provider_id": payload.provider_id,
        "claim_id": payload.claim_id,
        "kind": payload.kind,
        "amount_pence": payload.amount_pence,
        "accrued_on": payload.accrued_on,
    }


def assessment_row(payload: AssessmentRecorded, recorded_at: datetime) -> dict[str, Any]:
    return {
        "assessment_id": payload.assessment_id,
        "participant_id": payload.participant_id,
        "programme": payload.programme,
        "kind": payload.kind,
        "assessed_on": payload.assessed_on,
        "recorded_at": recorded_at,
        "barriers": dict(payload.barriers),
    }
