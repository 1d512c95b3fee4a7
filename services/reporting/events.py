"""Events the reporting service consumes, and the handler that applies them.

Reporting binds only to events that carry no personal data: never to
``referrals.referral.accepted``. Every envelope received is kept in ``event_log`` (the
inbox keeps only ids) so ``pathways reports rebuild`` can replay it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.store import projector
from shared.consumer import Subscription
from shared.events import casework, gateway, outcomes, referrals
from shared.events.envelope import Envelope, parse_payload

CONSUMED = (
    gateway.ProgrammeDefined,
    referrals.ReferralStatusChanged,
    casework.ParticipantAttached,
    casework.AssessmentRecorded,
    outcomes.ClaimDecided,
    outcomes.AccrualRecorded,
)


async def handle(session: AsyncSession, envelope: Envelope) -> None:
    """Log the event; apply it unless a rebuild is running (the rebuild applies it)."""
    payload = parse_payload(envelope)  # an invalid payload is poison: dead-lettered
    # The share lock is taken before the event is logged, so a rebuild that waits for
    # it knows every event logged before it started is committed.
    rebuilding = await projector.rebuild_in_progress(session, hold=True)
    await projector.log_event(session, envelope)
    if not rebuilding:
        await projector.apply(session, envelope, payload)


async def handle_referral_changes(session: AsyncSession, envelopes: list[Envelope]) -> None:
    """Referral status events, in runs (they are most of the traffic): logged in one
    statement and applied set-based."""
    payloads = [parse_payload(e) for e in envelopes]
    rebuilding = await projector.rebuild_in_progress(session, hold=True)
    await projector.log_events(session, envelopes)
    if not rebuilding:
        await projector.apply_referral_changes(session, payloads)  # type: ignore[arg-type]


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(p.event_type, batch_handler=handle_referral_changes)
    if p is referrals.ReferralStatusChanged
    else Subscription(p.event_type, handle)
    for p in CONSUMED
]
