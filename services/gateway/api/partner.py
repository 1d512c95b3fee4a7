"""Partner routes the gateway serves itself: webhooks (contract §9) and the audit log.

The gateway middleware has already authenticated the partner, checked its kind and
charged its rate limit before these run; the partner arrives as ``PartnerDep``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from services.gateway import domain, store
from services.gateway.api.deps import GatewayDep, PartnerDep
from services.gateway.api.models import (
    AuditEntry,
    AuditPage,
    DeliveryList,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
    problems,
)
from shared.caller import PartnerKind, require_kind
from shared.db import SessionDep
from shared.errors import FieldError, PathId, Problem, not_found, parse_id, unprocessable
from shared.logging import get_logger
from shared.pagination import decode_cursor, encode_cursor

log = get_logger(__name__)

router = APIRouter(prefix="/v1")

_PARTNER_ERRORS = (401, 403, 429)


# --- webhooks -------------------------------------------------------------------------


def _webhook_out(row: Any) -> WebhookOut:
    return WebhookOut(id=row.id, url=row.url, events=list(row.events), created_at=row.created_at)


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=problems(*_PARTNER_ERRORS, 409, 422),
    tags=["webhooks"],
    summary="Subscribe a URL to events about the referrals this partner can see",
)
async def create_webhook(
    body: WebhookIn,
    partner: PartnerDep,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
) -> WebhookCreated:
    settings = gateway.settings
    problem = domain.webhook_url_problem(
        body.url,
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private_targets,
    )
    if problem is not None:
        raise unprocessable(FieldError("url", problem))
    await store.lock_partner(session, partner.partner_id)
    if await store.count_subscriptions(session, partner.partner_id) >= (
        settings.webhook_max_subscriptions
    ):
        raise Problem(
            409,
            f"A partner may have at most {settings.webhook_max_subscriptions} webhooks; "
            "delete one first.",
        )
    secret = domain.generate_webhook_secret()
    row = await store.insert_subscription(
        session,
        id=uuid.uuid4(),
        partner_id=partner.partner_id,
        url=body.url,
        events=list(dict.fromkeys(body.events)),
        secret=secret,
    )
    await session.commit()
    log.info("webhook created", partner_id=str(partner.partner_id), webhook_id=str(row.id))
    response.headers["Location"] = f"/v1/webhooks/{row.id}"
    return WebhookCreated(**_webhook_out(row).model_dump(), secret=secret)


@router.get(
    "/webhooks",
    response_model=WebhookList,
    responses=problems(*_PARTNER_ERRORS),
    tags=["webhooks"],
)
async def list_webhooks(partner: PartnerDep, session: SessionDep) -> WebhookList:
    rows = await store.list_subscriptions(session, partner.partner_id)
    return WebhookList(items=[_webhook_out(row) for row in rows])


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    responses=problems(*_PARTNER_ERRORS, 404, 422),
    tags=["webhooks"],
    summary="Delete a webhook; deliveries not yet made are cancelled",
)
async def delete_webhook(webhook_id: PathId, partner: PartnerDep, session: SessionDep) -> Response:
    row = await store.get_subscription(session, partner.partner_id, parse_id(webhook_id, "webhook"))
    if row is None:
        raise not_found("webhook")
    await store.delete_subscription(session, row.id)
    await session.commit()
    log.info("webhook deleted", partner_id=str(partner.partner_id), webhook_id=str(row.id))
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=DeliveryList,
    responses=problems(*_PARTNER_ERRORS, 404, 422),
    tags=["webhooks"],
    summary="Deliveries to a webhook, newest first; ?status=failed lists the given-up ones",
)
async def list_deliveries(
    webhook_id: PathId,
    partner: PartnerDep,
    session: SessionDep,
    status: Literal["pending", "retrying", "delivered", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> DeliveryList:
    after = decode_cursor(cursor, types=[int])[0] if cursor else None
    subscription = await store.get_subscription(
        session, partner.partner_id, parse_id(webhook_id, "webhook")
    )
    if subscription is None:
        raise not_found("webhook")
    rows = await store.list_deliveries(
        session, subscription.id, status=status, after_id=after, limit=limit + 1
    )
    items = [
        DeliveryOut(
            event_id=row.event_id,
            type=row.event_type,
            referral_id=row.referral_id,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            last_attempt_at=row.last_attempt_at,
            next_attempt_at=row.next_attempt_at if row.status in store.OPEN_STATUSES else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return DeliveryList(items=items, next_cursor=next_cursor)


# --- audit ----------------------------------------------------------------------------

_OFFSET_LOST_IN_QUERY = re.compile(r"^(.*T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _timestamp(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 timestamp from the query string. A ``+`` that was not percent-encoded
    arrives as a space, so that is read back as the offset it was; a timestamp with no
    offset is taken as UTC."""
    if value is None:
        return None
    value = value.strip()
    if fixed := _OFFSET_LOST_IN_QUERY.match(value):
        value = f"{fixed.group(1)}+{fixed.group(2)}"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise unprocessable(FieldError(name, "must be an ISO 8601 timestamp")) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses=problems(*_PARTNER_ERRORS, 422),
    tags=["audit"],
    summary="Who called what, when, with what result (programme office), oldest first",
)
async def query_audit(
    partner: PartnerDep,
    session: SessionDep,
    gateway: GatewayDep,
    partner_id: uuid.UUID | None = None,
    since: str | None = Query(None, description="ISO 8601 timestamp; calls at or after it"),
    until: str | None = Query(None, description="ISO 8601 timestamp; calls before it"),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    require_kind(partner.caller, PartnerKind.PROGRAMME_OFFICE)
    since_at = _timestamp("since", since)
    until_at = _timestamp("until", until)
    after = decode_cursor(cursor, types=[int])[0] if cursor else None
    rows = await store.query_audit(
        session,
        partner_id=partner_id,
        since=since_at,
        until=until_at,
        after_id=after,
        limit=limit + 1,
    )
    items = [AuditEntry.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return AuditPage(items=items, next_cursor=next_cursor)
