"""Referrals as casework learns of them from the referrals service's events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import ReferralFacts, status_supersedes
from services.casework.store.tables import referrals


async def apply_referral_news(
    session: AsyncSession,
    *,
    referral_id: uuid.UUID,
    programme: str,
    provider_id: uuid.UUID | None,
    source: str,
    referred_on: date,
    status: str,
    changed_at: datetime | None,
    person: dict[str, Any] | None = None,
    circumstances: dict[str, Any] | None = None,
) -> None:
    """Merge what one event says about a referral into what is known, in any order.

    The row is locked while it is merged, so an attachment deciding on this referral
    at the same moment sees either the state before this event or after it.
    """
    await session.execute(
        pg_insert(referrals)
        .values(
            referral_id=referral_id,
            programme=programme,
            provider_id=provider_id,
            source=source,
            referred_on=referred_on,
            status=status,
            status_changed_at=changed_at,
            person=person,
            circumstances=circumstances,
        )
        .on_conflict_do_nothing(index_elements=[referrals.c.referral_id])
    )
    row = (
        await session.execute(
            select(referrals.c.status, referrals.c.status_changed_at, referrals.c.provider_id)
            .where(referrals.c.referral_id == referral_id)
            .with_for_update()
        )
    ).one()
    changes: dict[str, Any] = {}
    if status_supersedes(row.status, row.status_changed_at, status, changed_at):
        changes["status"] = status
        if changed_at is not None:
            changes["status_changed_at"] = changed_at
    # A referral is routed once; a later event without a provider (rejected, or an
    # older `received`) never unroutes it.
    if provider_id is not None and row.provider_id is None:
        changes["provider_id"] = provider_id
    if person is not None:
        changes["person"] = person
        changes["circumstances"] = circumstances
    if changes:
        changes["updated_at"] = func.now()
        await session.execute(
            update(referrals).where(referrals.c.referral_id == referral_id).values(**changes)
        )


async def referral_facts(
    session: AsyncSession, referral_id: uuid.UUID, *, lock: bool = False
) -> ReferralFacts | None:
    query = select(
        referrals.c.referral_id,
        referrals.c.programme,
        referrals.c.provider_id,
        referrals.c.status,
        referrals.c.referred_on,
    ).where(referrals.c.referral_id == referral_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        return None
    return ReferralFacts(
        referral_id=row.referral_id,
        programme=row.programme,
        provider_id=row.provider_id,
        status=row.status,
        referred_on=row.referred_on,
    )


async def person_details(
    session: AsyncSession, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The person each referral is about (personal data: for the owning provider only)."""
    if not referral_ids:
        return {}
    rows = await session.execute(
        select(referrals.c.referral_id, referrals.c.person).where(
            referrals.c.referral_id.in_(referral_ids), referrals.c.person.is_not(None)
        )
    )
    return {row.referral_id: row.person for row in rows}
