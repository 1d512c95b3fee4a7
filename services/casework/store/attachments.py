"""Attachments asked of referrals, and their answers."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import Attachment, AttachmentRequest, AttachmentState
from services.casework.store.tables import attachment_requests


async def attachment_request(session: AsyncSession, referral_id: uuid.UUID) -> Row[Any] | None:
    return (
        await session.execute(
            select(attachment_requests).where(attachment_requests.c.referral_id == referral_id)
        )
    ).first()


def as_request(row: Row[Any]) -> AttachmentRequest:
    return AttachmentRequest(
        provider_id=row.provider_id,
        attachment=Attachment(row.referral_id, row.attached_on, row.key_worker),
        state=AttachmentState(row.state),
        refused_as=row.refused_as,
    )


async def insert_request(
    session: AsyncSession,
    *,
    participant_id: uuid.UUID,
    referral_id: uuid.UUID,
    programme: str,
    provider_id: uuid.UUID,
    referred_on: date,
    attached_on: date,
    key_worker: str,
) -> Row[Any]:
    return (
        await session.execute(
            insert(attachment_requests)
            .values(
                referral_id=referral_id,
                participant_id=participant_id,
                programme=programme,
                provider_id=provider_id,
                referred_on=referred_on,
                attached_on=attached_on,
                key_worker=key_worker,
                state=AttachmentState.REQUESTED,
            )
            .returning(*attachment_requests.c)
        )
    ).one()


async def record_answer(
    session: AsyncSession,
    *,
    referral_id: uuid.UUID,
    participant_id: uuid.UUID,
    granted: bool,
    status: str,
) -> Row[Any] | None:
    """The request with referrals' answer recorded; ``None`` if no such request is
    waiting for one (answered already, or never asked)."""
    c = attachment_requests.c
    return (
        await session.execute(
            update(attachment_requests)
            .where(
                c.referral_id == referral_id,
                c.participant_id == participant_id,
                c.state == AttachmentState.REQUESTED,
            )
            .values(
                state=AttachmentState.GRANTED if granted else AttachmentState.REFUSED,
                refused_as=None if granted else status,
                answered_at=func.now(),
            )
            .returning(*attachment_requests.c)
        )
    ).first()
