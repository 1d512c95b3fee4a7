"""Events the referrals service consumes, and the handlers that apply them.

Handlers run inside the consumer's transaction (one savepoint per event) and never
commit; the inbox makes each event count once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import lifecycle, store
from shared.consumer import Subscription
from shared.events.casework import AttachmentRequested, ParticipantAttached
from shared.events.envelope import Envelope
from shared.events.gateway import ProgrammeDefined
from shared.outbox import Outbox

# The same outbox table and producer name the service's runtime writes with.
OUTBOX = Outbox(store.outbox, producer="referrals")


async def handle_programme_defined(session: AsyncSession, envelope: Envelope) -> None:
    payload = ProgrammeDefined.model_validate(envelope.payload)
    await lifecycle.programme_defined(session, OUTBOX, payload)


async def handle_participant_attached(session: AsyncSession, envelope: Envelope) -> None:
    payload = ParticipantAttached.model_validate(envelope.payload)
    await lifecycle.participant_attached(session, OUTBOX, payload)


async def handle_attachment_requested(session: AsyncSession, envelope: Envelope) -> None:
    payload = AttachmentRequested.model_validate(envelope.payload)
    await lifecycle.attachment_requested(session, OUTBOX, payload)


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(ProgrammeDefined.event_type, handle_programme_defined),
    Subscription(AttachmentRequested.event_type, handle_attachment_requested),
    Subscription(ParticipantAttached.event_type, handle_participant_attached),
]
