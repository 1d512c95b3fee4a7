"""Events the referrals service publishes.

Two kinds, so each consumer gets what it needs and no more (contract §8):

* ``referrals.referral.status_changed`` carries no personal data: reporting builds its
  projections from it, the gateway sends webhooks from it, casework learns routing.
* ``referrals.referral.accepted`` carries the person's details, for the provider's
  casework only. Only casework binds to it.

And ``referrals.referral.attachment_answered``, the answer to an attachment casework
asked for.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from shared.events.envelope import EventPayload, register


@register
class ReferralStatusChanged(EventPayload):
    event_type = "referrals.referral.status_changed"

    referral_id: uuid.UUID
    external_ref: str
    programme: str
    source: str  # jcp | probation | treatment | self
    referrer_id: uuid.UUID  # the partner that posted it
    provider_id: uuid.UUID | None
    status: str
    previous_status: str | None
    reasons: list[str]
    duplicate_of: uuid.UUID | None
    referred_on: date
    local_authority: str
    benefit: str
    gender: str | None
    age_band: str | None  # 18-24 | 25-34 | 35-49 | 50+ | None under 18
    changed_at: datetime
    # This status's place in the referral's history (1 for received). Two changes made
    # at one instant (received, then accepted at once) share changed_at: this orders
    # them. None only in events written before it was added.
    sequence: int | None = None


@register
class AttachmentAnswered(EventPayload):
    """Referrals' answer to ``casework.participant.attachment_requested``. Granted: the
    referral is now ``attached`` to that participant. Refused: ``status`` says what it
    had become instead (``withdrawn``, ``declined``, or ``attached`` to another
    participant). For casework only, like the request."""

    event_type = "referrals.referral.attachment_answered"

    referral_id: uuid.UUID
    participant_id: uuid.UUID
    granted: bool
    status: str


class PersonDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    given_name: str
    family_name: str
    date_of_birth: date
    nino: str | None
    postcode: str
    local_authority: str
    gender: str | None
    disability: bool | None
    phone: str | None


class Circumstances(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    benefit: str
    months_out_of_work: int | None
    criminal_justice: str | None
    treatment: str | None


@register
class ReferralAccepted(EventPayload):
    """Personal data: consumed by casework only."""

    event_type = "referrals.referral.accepted"

    referral_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    source: str
    referred_on: date
    person: PersonDetails
    circumstances: Circumstances
