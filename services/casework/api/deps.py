"""What every casework route needs: who may call it, and the participant it names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.store import participants as participant_store
from shared.caller import Caller, CallerDep, PartnerKind, require_kind
from shared.errors import not_found, parse_id
from shared.outbox import Outbox


async def _provider(caller: CallerDep) -> Caller:
    # Checked before the body is read, so a forbidden caller hears 403, not 422.
    require_kind(caller, PartnerKind.PROVIDER)
    return caller


async def _reader(caller: CallerDep) -> Caller:
    require_kind(caller, PartnerKind.PROVIDER, PartnerKind.PROGRAMME_OFFICE)
    return caller


ProviderDep = Annotated[Caller, Depends(_provider)]
ReaderDep = Annotated[Caller, Depends(_reader)]


def now() -> datetime:
    return datetime.now(UTC)


def outbox_of(request: Request) -> Outbox:
    outbox = request.app.state.runtime.outbox
    assert outbox is not None
    return outbox


def may_see(caller: Caller, provider_id: uuid.UUID) -> bool:
    return caller.is_programme_office or provider_id == caller.partner_id


async def visible_participant(
    session: AsyncSession, caller: Caller, raw_id: str, *, lock: bool = False
) -> Row[Any]:
    """The participant, if the caller may see it; otherwise ``404`` (contract §1)."""
    row = await participant_store.participant(session, parse_id(raw_id, "participant"), lock=lock)
    if row is None or not may_see(caller, row.provider_id):
        raise not_found("participant")
    return row
