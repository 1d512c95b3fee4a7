"""Events the casework service consumes, and the payloads it publishes.

Consumed (from the referrals service), both merged order-tolerantly into
``casework.referrals``:

* ``referrals.referral.accepted``: routing plus the person's details, the provider's
  record of who it is supporting (the only event carrying personal data).
* ``referrals.referral.status_changed``: every status; withdrawn and declined
  referrals can then be refused with ``409``.

* ``referrals.referral.attachment_answered``: the answer to an attachment casework
  asked for with ``casework.participant.attachment_requested``. Granted, it creates the
  participant (and publishes ``casework.participant.attached``); refused, the provider
  is told ``409``.

Consumed from the outcomes service: ``outcomes.participant.facts_requested``, answered
with ``casework.participant.facts_confirmed`` (the participant's employment as it stands).

Published (``shared/events/casework.py``; aggregate = the participant): attachment
requested and attached, assessment, employment started/ended (the episode's whole state
each time), exit, and those answers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import ReferralNews
from services.casework.store import attachments as attachment_store
from services.casework.store import participants as participant_store
from services.casework.store import referrals as referral_store
from services.casework.store.tables import outbox
from shared.consumer import Subscription
from shared.events.casework import (
    AssessmentRecorded,
    AttachmentRequested,
    EmploymentEnded,
    EmploymentStarted,
    EpisodeState,
    ParticipantAttached,
    ParticipantExited,
    ParticipantFactsConfirmed,
)
from shared.events.envelope import Envelope, parse_payload
from shared.events.outcomes import ParticipantFactsRequested
from shared.events.referrals import AttachmentAnswered, ReferralAccepted, ReferralStatusChanged
from shared.logging import get_logger
from shared.outbox import Outbox

log = get_logger(__name__)

# Stateless: it only knows the table to write events to, in the handler's transaction.
OUTBOX = Outbox(outbox, producer="casework")


def _without_nul(value: Any) -> Any:
    """PostgreSQL's jsonb cannot hold NUL characters; they carry no meaning in a
    person's details, and refusing the event would leave the referral unattachable."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _news(envelope: Envelope) -> ReferralNews:
    event = parse_payload(envelope)
    assert isinstance(event, ReferralAccepted | ReferralStatusChanged)
    routing = {
        "referral_id": event.referral_id,
        "programme": event.programme,
        "provider_id": event.provider_id,
        "source": event.source,
        "referred_on": event.referred_on,
    }
    if isinstance(event, ReferralStatusChanged):
        return ReferralNews(**routing, status=event.status, changed_at=event.changed_at)
    return ReferralNews(
        **routing,
        status="accepted",
        # The payload has no change time; the stage order alone places it (a later
        # withdrawn/declined/attached always wins over it, whichever arrives first).
        changed_at=None,
        person=_without_nul(event.person.model_dump(mode="json")),
        circumstances=_without_nul(event.circumstances.model_dump(mode="json")),
    )


async def handle_referral_news(session: AsyncSession, envelopes: list[Envelope]) -> None:
    """Both referral events, in runs: merged set-based (a fixed handful of statements a
    run, however long)."""
    await referral_store.apply_referral_news(session, [_news(e) for e in envelopes])


async def handle_facts_requested(session: AsyncSession, envelope: Envelope) -> None:
    """Answer with the participant's employment as committed now. The participant's row
    is locked so an employment change in progress is either in the answer or after it."""
    event = parse_payload(envelope)
    assert isinstance(event, ParticipantFactsRequested)
    participant = await participant_store.participant(session, event.participant_id, lock=True)
    episodes = []
    if participant is not None:
        found = await participant_store.episodes_of(session, [participant.id])
        episodes = [
            EpisodeState(
                episode_id=row.id,
                started_on=row.started_on,
                ended_on=row.ended_on,
                hours_per_week=float(row.hours_per_week),
                self_employed=row.self_employed,
            )
            for row in found[participant.id]
        ]
    answer = ParticipantFactsConfirmed(
        request_id=event.request_id,
        participant_id=event.participant_id,
        known=participant is not None,
        programme=participant.programme if participant is not None else None,
        provider_id=participant.provider_id if participant is not None else None,
        episodes=episodes,
    )
    await OUTBOX.add(session, answer, aggregate_id=event.participant_id)


class AttachedElsewhere(Exception):
    """Referrals granted an attachment of a referral that already has a participant.
    Nothing casework does can make the two agree, so the answer ends in the dead-letter
    queue for a person to look at."""


async def handle_attachment_answered(session: AsyncSession, envelope: Envelope) -> None:
    """Granted: create the participant asked for, in the same transaction as the answer
    is recorded, so a granted request always has its participant. Refused: record it,
    and the provider waiting on the request gets ``409``."""
    event = parse_payload(envelope)
    assert isinstance(event, AttachmentAnswered)
    asked = await attachment_store.record_answer(
        session,
        referral_id=event.referral_id,
        participant_id=event.participant_id,
        granted=event.granted,
        status=event.status,
    )
    if asked is None:
        log.warning("attachment answer with no request waiting", referral_id=str(event.referral_id))
        return
    if not event.granted:
        log.info("attachment refused", referral_id=str(event.referral_id), status=event.status)
        return
    created = await participant_store.insert_participant(
        session,
        participant_id=asked.participant_id,
        referral_id=asked.referral_id,
        programme=asked.programme,
        provider_id=asked.provider_id,
        referred_on=asked.referred_on,
        attached_on=asked.attached_on,
        key_worker=asked.key_worker,
    )
    if not created:
        raise AttachedElsewhere(f"referral {asked.referral_id} already has a participant")
    row = await participant_store.participant(session, asked.participant_id)
    assert row is not None
    await OUTBOX.add(session, participant_attached(row), aggregate_id=row.id)
    log.info("participant attached", participant_id=str(row.id))


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(ReferralAccepted.event_type, batch_handler=handle_referral_news),
    Subscription(ReferralStatusChanged.event_type, batch_handler=handle_referral_news),
    Subscription(AttachmentAnswered.event_type, handle_attachment_answered),
    Subscription(ParticipantFactsRequested.event_type, handle_facts_requested),
]


# --- what casework publishes ---------------------------------------------------------


def attachment_requested(asked: Any) -> AttachmentRequested:
    return AttachmentRequested(
        participant_id=asked.participant_id,
        referral_id=asked.referral_id,
        provider_id=asked.provider_id,
        attached_on=asked.attached_on,
    )


def participant_attached(row: Any) -> ParticipantAttached:
    return ParticipantAttached(
        participant_id=row.id,
        referral_id=row.referral_id,
        programme=row.programme,
        provider_id=row.provider_id,
        attached_on=row.attached_on,
    )


def participant_exited(row: Any) -> ParticipantExited:
    return ParticipantExited(
        participant_id=row.id,
        programme=row.programme,
        provider_id=row.provider_id,
        left_on=row.left_on,
        reason=row.exit_reason,
    )


def assessment_recorded(participant: Any, assessment: Any) -> AssessmentRecorded:
    return AssessmentRecorded(
        assessment_id=assessment.id,
        participant_id=participant.id,
        programme=participant.programme,
        provider_id=participant.provider_id,
        kind=assessment.kind,
        assessed_on=assessment.assessed_on,
        barriers=dict(assessment.barriers),
        wellbeing=assessment.wellbeing,
    )


def _episode_fields(participant: Any, episode: Any) -> dict[str, Any]:
    return {
        "episode_id": episode.id,
        "participant_id": participant.id,
        "programme": participant.programme,
        "provider_id": participant.provider_id,
        "started_on": episode.started_on,
        "ended_on": episode.ended_on,
        "hours_per_week": float(episode.hours_per_week),
        "self_employed": episode.self_employed,
    }


def employment_started(participant: Any, episode: Any) -> EmploymentStarted:
    return EmploymentStarted(**_episode_fields(participant, episode))


def employment_ended(participant: Any, episode: Any) -> EmploymentEnded:
    return EmploymentEnded(**_episode_fields(participant, episode))
