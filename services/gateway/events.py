"""Events the gateway service consumes, and the handlers that apply them.

``referrals.referral.status_changed`` becomes one queued webhook delivery per live
subscription of each partner that can see the referral (contract §9): the partner
that made it, the provider it is routed to, and the programme office.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import domain, store
from shared.consumer import Subscription
from shared.events.envelope import Envelope, parse_payload
from shared.events.referrals import ReferralStatusChanged
from shared.logging import get_logger

log = get_logger(__name__)


def _change(envelope: Envelope) -> store.StatusChange:
    event = parse_payload(envelope)
    assert isinstance(event, ReferralStatusChanged)
    return store.StatusChange(
        event_id=envelope.event_id,
        event_type=domain.REFERRAL_STATUS_CHANGED,
        referral_id=event.referral_id,
        occurred_at=event.changed_at,
        sequence=event.sequence or 0,
        payload=domain.webhook_body(
            event_id=envelope.event_id,
            occurred_at=event.changed_at.isoformat(),
            referral_id=event.referral_id,
            external_ref=event.external_ref,
            status=event.status,
        ),
        referrer_id=event.referrer_id,
        provider_id=event.provider_id,
    )


async def handle_referral_status_changes(session: AsyncSession, envelopes: list[Envelope]) -> None:
    # Idempotent twice over: the inbox drops a redelivered event, and each
    # (subscription, event) pair can be queued once only.
    queued = await store.queue_deliveries(session, [_change(e) for e in envelopes])
    if queued:
        log.info("webhook deliveries queued", events=len(envelopes), count=queued)


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(ReferralStatusChanged.event_type, batch_handler=handle_referral_status_changes),
]
