"""Events the casework service publishes. None carries a name, NINO or phone."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, ConfigDict

from shared.events.envelope import EventPayload, register

# The barriers an assessment scores (contract §3), in the contract's order: the keys of
# ``AssessmentRecorded.barriers``.
BARRIERS: tuple[str, ...] = (
    "physical_health",
    "mental_health",
    "substance_misuse",
    "housing",
    "debt",
    "qualifications_skills",
    "work_experience",
    "confidence",
    "digital_skills",
    "childcare",
    "caring_responsibilities",
    "public_transport",
    "private_transport",
    "convictions",
    "bereavement",
    "family_support",
    "relationship_breakdown",
    "chaotic_lifestyle",
    "local_labour_market",
    "age",
)


@register
class ParticipantAttached(EventPayload):
    event_type = "casework.participant.attached"

    participant_id: uuid.UUID
    referral_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    attached_on: date


@register
class AttachmentRequested(EventPayload):
    """Casework asks referrals to move the referral to ``attached`` before it answers
    the provider. Referrals owns the referral's status, so an attachment and a
    withdrawal or decline are serialised there, whichever comes first (contract §2, §3);
    the participant is created only once referrals has granted it."""

    event_type = "casework.participant.attachment_requested"

    participant_id: uuid.UUID  # the participant the attachment will create
    referral_id: uuid.UUID
    provider_id: uuid.UUID
    attached_on: date


@register
class AssessmentRecorded(EventPayload):
    event_type = "casework.assessment.recorded"

    assessment_id: uuid.UUID
    participant_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    kind: str  # initial | review | exit
    assessed_on: date
    barriers: dict[str, int]  # only the barriers scored; 0..6
    wellbeing: int | None


class _EmploymentEpisode(EventPayload):
    """The episode's whole current state, so consumers can apply either event in any order."""

    episode_id: uuid.UUID
    participant_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    started_on: date
    ended_on: date | None  # last day in work, inclusive; None while ongoing
    hours_per_week: float
    self_employed: bool


@register
class EmploymentStarted(_EmploymentEpisode):
    event_type = "casework.employment.started"


@register
class EmploymentEnded(_EmploymentEpisode):
    event_type = "casework.employment.ended"


class EpisodeState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    episode_id: uuid.UUID
    started_on: date
    ended_on: date | None
    hours_per_week: float
    self_employed: bool


@register
class ParticipantFactsConfirmed(EventPayload):
    """Casework's answer to ``outcomes.participant.facts_requested``: the participant's
    employment episodes as they stood when it was asked (whole states, like
    ``employment.*``). ``known`` is false for a participant casework has never had,
    and then the rest is empty."""

    event_type = "casework.participant.facts_confirmed"

    request_id: uuid.UUID
    participant_id: uuid.UUID
    known: bool
    programme: str | None
    provider_id: uuid.UUID | None
    episodes: list[EpisodeState]


@register
class ParticipantExited(EventPayload):
    event_type = "casework.participant.exited"

    participant_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    left_on: date
    reason: str
