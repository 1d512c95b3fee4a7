"""Referrals as casework learns of them from the referrals service's events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import KnownReferral, ReferralFacts, ReferralNews, merge_all
from services.casework.store.tables import SCHEMA, referrals

_COLUMNS = """referral_id uuid, programme text, provider_id uuid, source text, referred_on date,
    status text, status_changed_at timestamptz, person jsonb, circumstances jsonb"""

# Set-based: a whole batch of news is merged with a fixed number of statements. The rows
# travel as one JSON document (jsonb_to_recordset), so each statement's text is fixed.
_LOCK_KNOWN = text(f"""
    SELECT referral_id, status, status_changed_at, provider_id FROM {SCHEMA}.referrals
    WHERE referral_id = ANY(CAST(:ids AS uuid[]))
    ORDER BY referral_id
    FOR UPDATE
""")
_INSERT_NEW = text(f"""
    INSERT INTO {SCHEMA}.referrals
        (referral_id, programme, provider_id, source, referred_on, status,
         status_changed_at, person, circumstances)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v({_COLUMNS})
    ORDER BY referral_id
    ON CONFLICT (referral_id) DO NOTHING
    RETURNING referral_id
""")
_UPDATE_KNOWN = text(f"""
    UPDATE {SCHEMA}.referrals AS r
    SET status = v.status,
        status_changed_at = v.status_changed_at,
        provider_id = v.provider_id,
        person = CASE WHEN v.person IS NULL THEN r.person ELSE v.person END,
        circumstances = CASE WHEN v.person IS NULL THEN r.circumstances ELSE v.circumstances END,
        updated_at = now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v({_COLUMNS})
    WHERE r.referral_id = v.referral_id
""")


async def apply_referral_news(session: AsyncSession, news: Sequence[ReferralNews]) -> None:
    """Merge what a run of events says about referrals into what is known, in any order
    of arrival (:func:`~services.casework.domain.merge_news`).

    Known rows are locked while they are merged, so an attachment deciding on a referral
    at the same moment sees either the state before these events or after them.
    """
    if not news:
        return
    by_referral: dict[uuid.UUID, list[ReferralNews]] = {}
    for item in news:
        by_referral.setdefault(item.referral_id, []).append(item)
    known = await _lock_known(session, list(by_referral))
    new = {rid: items for rid, items in by_referral.items() if rid not in known}
    if new:
        inserted = await session.execute(
            _INSERT_NEW,
            {
                "rows": _rows(
                    (items[0], merge_all(KnownReferral.first(items[0]), items[1:]))
                    for items in new.values()
                )
            },
        )
        raced = set(new) - set(inserted.scalars())
        if raced:  # made by another consumer since we looked: merged like any known row
            known |= await _lock_known(session, sorted(raced))
    changed = []
    for referral_id, was in known.items():
        items = by_referral[referral_id]
        now = merge_all(was, items)
        if now != was:
            changed.append((items[0], now))
    if changed:
        await session.execute(_UPDATE_KNOWN, {"rows": _rows(changed)})


async def _lock_known(
    session: AsyncSession, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, KnownReferral]:
    rows = await session.execute(_LOCK_KNOWN, {"ids": referral_ids})
    return {
        row.referral_id: KnownReferral(row.status, row.status_changed_at, row.provider_id)
        for row in rows
    }


def _rows(merged: Iterable[tuple[ReferralNews, KnownReferral]]) -> str:
    return orjson.dumps(
        [
            {
                "referral_id": first.referral_id,
                "programme": first.programme,
                "provider_id": state.provider_id,
                "source": first.source,
                "referred_on": first.referred_on,
                "status": state.status,
                "status_changed_at": state.status_changed_at,
                "person": state.person,
                "circumstances": state.circumstances,
            }
            for first, state in merged
        ],
        default=str,  # asyncpg's own UUID type, read back by the lock query
    ).decode()


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
