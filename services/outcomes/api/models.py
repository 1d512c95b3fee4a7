"""Request and response bodies of the outcomes routes (contract §4, §5).

Requests refuse unknown fields (``422`` naming them): a misspelt ``employment_id`` from a
CRM would otherwise be dropped without anyone noticing.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr
from sqlalchemy import Row

from services.outcomes.domain import (
    ClaimStatus,
    EvidenceKind,
    OutcomeType,
    ReviewDecision,
    Rule,
)

MAX_EVIDENCE_ITEMS = 50
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    # Only a calendar date as the contract writes it; no timestamps, no epoch numbers.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real date, YYYY-MM-DD") from None


Day = Annotated[date, BeforeValidator(_iso_date)]


def _stripped_not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return clean_text(value)


def clean_text(value: str) -> str:
    """Text PostgreSQL can store: valid UTF-8 (no lone surrogates), no NUL characters."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _text(max_length: int) -> Any:
    return Annotated[StrictStr, Field(max_length=max_length), AfterValidator(_stripped_not_blank)]


Reference = _text(200)
ReasonText = _text(2000)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceIn(RequestBody):
    kind: EvidenceKind
    reference: Reference | None = None  # type: ignore[valid-type]
    dated: Day | None = None


class ClaimIn(RequestBody):
    participant_id: uuid.UUID
    type: OutcomeType
    achieved_on: Day
    employment_id: uuid.UUID | None = None
    # Empty or left out is allowed: the claim then fails missing_evidence.
    evidence: list[EvidenceIn] | None = Field(default=None, max_length=MAX_EVIDENCE_ITEMS)


class DecisionIn(RequestBody):
    decision: ReviewDecision
    reason: ReasonText  # type: ignore[valid-type]


class EvidenceOut(BaseModel):
    kind: EvidenceKind
    reference: str | None
    dated: date | None


class ClaimOut(BaseModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    type: OutcomeType
    achieved_on: date
    employment_id: uuid.UUID | None
    evidence: list[EvidenceOut]
    status: ClaimStatus
    reasons: list[Rule] = Field(
        description="The rules the claim failed, in the contract's order; [] unless rejected."
    )
    provider_id: uuid.UUID
    programme: str | None = Field(
        description="The participant's programme; null until the participant is known to "
        "be attached to the claiming provider."
    )
    submitted_at: datetime
    decided_at: datetime | None
    decision: dict[str, Any] | None = Field(
        description="The decision record: every rule checked, in order, with its result and "
        "the facts it used, when, and who decided (the rules, or the programme office and "
        "their reason). null while the claim is submitted."
    )


class ClaimPage(BaseModel):
    items: list[ClaimOut]
    next_cursor: str | None


class AuditSampleOut(BaseModel):
    programme: str
    period: str
    rate: float
    population: int = Field(description="Validated claims of the programme achieved in period.")
    sample_size: int
    method: str
    items: list[ClaimOut] = Field(description="The sampled claims, in draw order.")


class StatementLine(BaseModel):
    kind: str
    participant_id: uuid.UUID
    claim_id: uuid.UUID | None
    amount_pence: int
    accrued_on: date
    line_id: uuid.UUID


class StatementOut(BaseModel):
    provider_id: uuid.UUID
    programme: str
    period: str
    lines: list[StatementLine]
    total_pence: int


def claim_out(row: Row[Any]) -> ClaimOut:
    return ClaimOut(
        id=row.id,
        participant_id=row.participant_id,
        type=OutcomeType(row.type),
        achieved_on=row.achieved_on,
        employment_id=row.employment_id,
        evidence=[EvidenceOut.model_validate(item) for item in row.evidence],
        status=ClaimStatus(row.status),
        reasons=[Rule(r) for r in row.reasons],
        provider_id=row.provider_id,
        programme=row.programme,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
        decision=row.decision,
    )
