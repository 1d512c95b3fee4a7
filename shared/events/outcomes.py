"""Events the outcomes service publishes."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from shared.events.envelope import EventPayload, register


@register
class ClaimDecided(EventPayload):
    event_type = "outcomes.claim.decided"

    claim_id: uuid.UUID
    participant_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    type: str
    status: str  # validated | rejected | review
    achieved_on: date
    reasons: list[str]
    decided_at: datetime
    # "rules", or "programme_office" when a person decided a claim sent to review.
    decided_by: str = "rules"


@register
class ParticipantFactsRequested(EventPayload):
    """Outcomes asks casework for a participant's employment as it stands, before it
    decides a claim that rests on it: an episode's change may still be on its way."""

    event_type = "outcomes.participant.facts_requested"

    request_id: uuid.UUID  # the claim waiting for the answer
    participant_id: uuid.UUID


@register
class AccrualRecorded(EventPayload):
    """One append-only ledger line; a reversal is a line with a negative amount."""

    event_type = "outcomes.accrual.recorded"

    line_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    participant_id: uuid.UUID
    claim_id: uuid.UUID | None
    kind: str  # attachment | the claim's type
    amount_pence: int
    accrued_on: date
