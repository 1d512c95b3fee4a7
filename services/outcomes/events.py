"""Events the outcomes service consumes, and the handlers that apply them.

Each fact a claim may depend on (programme, attachment, employment episode) is stored,
then the participant's waiting claims are decided if they now can be. Handlers run in
the consumer's transaction, are idempotent and tolerate any order of arrival.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.outcomes import decisions, store
from shared.consumer import Subscription
from shared.events.casework import (
    EmploymentEnded,
    EmploymentStarted,
    ParticipantAttached,
    ParticipantFactsConfirmed,
)
from shared.events.envelope import Envelope, parse_payload
from shared.events.gateway import ProgrammeDefined
from shared.outbox import Outbox

# Stateless: it only knows the table to write events to, in the handler's transaction.
OUTBOX = Outbox(store.outbox, producer="outcomes")


async def handle_programme_defined(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_payload(envelope)
    assert isinstance(event, ProgrammeDefined)
    await store.save_programme(
        session,
        {
            "code": event.code,
            "support_weeks": event.support_weeks,
            "min_job_hours": event.min_job_hours,
            "sustainment_weeks": event.sustainment_weeks,
            "tariff": dict(event.tariff),
        },
    )
    terms = await store.programme_terms(session, event.code)
    assert terms is not None
    # Only if the definition arrived after participants did (never in normal running).
    now = decisions.utcnow()
    for attachment in await store.participants_without_attachment_line(session, event.code):
        await store.lock_participant(session, attachment.participant_id)
        await decisions.accrue_attachment(session, OUTBOX, attachment, terms)
    for participant_id in await store.participants_waiting_in_programme(session, event.code):
        await store.lock_participant(session, participant_id)
        await decisions.settle_participant(session, OUTBOX, participant_id, now=now)


async def handle_participant_attached(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_payload(envelope)
    assert isinstance(event, ParticipantAttached)
    await store.lock_participant(session, event.participant_id)
    await store.save_participant(
        session,
        {
            "participant_id": event.participant_id,
            "referral_id": event.referral_id,
            "programme": event.programme,
            "provider_id": event.provider_id,
            "attached_on": event.attached_on,
        },
    )
    # What is stored is the attachment (a participant is attached once).
    attachment, terms = await store.attachment_with_terms(session, event.participant_id)
    assert attachment is not None
    if terms is not None:
        await decisions.accrue_attachment(session, OUTBOX, attachment, terms)
    await decisions.settle_participant(
        session, OUTBOX, event.participant_id, now=decisions.utcnow()
    )


async def handle_employment(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_payload(envelope)
    assert isinstance(event, EmploymentStarted | EmploymentEnded)
    await store.lock_participant(session, event.participant_id)
    await store.save_episode(
        session,
        {
            "episode_id": event.episode_id,
            "participant_id": event.participant_id,
            "programme": event.programme,
            "provider_id": event.provider_id,
            "started_on": event.started_on,
            "ended_on": event.ended_on,
            "hours_per_week": event.hours_per_week,
            "self_employed": event.self_employed,
            "state_at": envelope.occurred_at,
        },
    )
    await decisions.settle_participant(
        session, OUTBOX, event.participant_id, now=decisions.utcnow()
    )


async def handle_facts_confirmed(session: AsyncSession, envelope: Envelope) -> None:
    """Casework's answer to a claim's request: the episodes as they stood (stored like
    any episode event, so a later change still wins), then the claim may be decided."""
    event = parse_payload(envelope)
    assert isinstance(event, ParticipantFactsConfirmed)
    if not event.known:
        # Casework cannot vouch for a participant it never had: the claim's facts are
        # no more current than before, so it goes on waiting (then not_attached).
        return
    assert event.programme is not None and event.provider_id is not None
    await store.lock_participant(session, event.participant_id)
    for episode in event.episodes:
        await store.save_episode(
            session,
            {
                **episode.model_dump(),
                "participant_id": event.participant_id,
                "programme": event.programme,
                "provider_id": event.provider_id,
                "state_at": envelope.occurred_at,
            },
        )
    await store.confirm_employment(
        session, event.request_id, event.participant_id, envelope.occurred_at
    )
    await decisions.settle_participant(
        session, OUTBOX, event.participant_id, now=decisions.utcnow()
    )


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(ProgrammeDefined.event_type, handle_programme_defined),
    Subscription(ParticipantAttached.event_type, handle_participant_attached),
    Subscription(EmploymentStarted.event_type, handle_employment),
    Subscription(EmploymentEnded.event_type, handle_employment),
    Subscription(ParticipantFactsConfirmed.event_type, handle_facts_confirmed),
]
