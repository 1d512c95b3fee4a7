"""Events the gateway service consumes, and the handlers that apply them.

``referrals.referral.status_changed`` becomes one queued webhook delivery per live
subscription of each partner that can see the referral (contract §9): the partner
that made it, the provider it is routed to, and the programme office.
"""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import domain, store
from shared.consumer import Subscription
from shared.events.envelope import Envelope, parse_payload
from shared.events.referrals import ReferralStatusChanged
from shared.logging import get_logger

log = get_logger(__name__)


async def handle_referral_status_changed(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_payload(envelope)
    assert isinstance(event, ReferralStatusChanged)
    body = domain.webhook_body(
        event_id=envelope.event_id,
        occurred_at=event.changed_at.isoformat(),
        referral_id=event.referral_id,
        external_ref=event.external_ref,
        status=event.status,
    )
    # Idempotent twice over: the inbox drops a redelivered event, and each
    # (subscription, event) pair can be queued once only.
    queued = await store.queue_deliveries(
        session,
        event_id=envelope.event_id,
        event_type=domain.REFERRAL_STATUS_CHANGED,
        referral_id=event.referral_id,
        occurred_at=event.changed_at,
        payload_json=orjson.dumps(body).decode(),
        referrer_id=event.referrer_id,
        provider_id=event.provider_id,
    )
    if queued:
        log.info("webhook deliveries queued", referral_id=str(event.referral_id), count=queued)


SUBSCRIPTIONS: list[Subscription] = [
    Subscription(ReferralStatusChanged.event_type, handle_referral_status_changed),
]
