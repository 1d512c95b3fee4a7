"""What the outcomes routes share: who may call them, settings, the outbox, and helpers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.outcomes import store
from services.outcomes.api.models import clean_text
from services.outcomes.settings import OutcomesSettings
from shared.caller import Caller, CallerDep, PartnerKind, require_kind
from shared.consistency import wait_for
from shared.errors import FieldError, unprocessable
from shared.outbox import Outbox

UK = ZoneInfo("Europe/London")


# Kinds are checked before the body is read, so a forbidden caller hears 403, not 422.
async def _claimant(caller: CallerDep) -> Caller:
    require_kind(caller, PartnerKind.PROVIDER)
    return caller


async def _reader(caller: CallerDep) -> Caller:
    require_kind(caller, PartnerKind.PROVIDER, PartnerKind.PROGRAMME_OFFICE)
    return caller


async def _programme_office(caller: CallerDep) -> Caller:
    require_kind(caller, PartnerKind.PROGRAMME_OFFICE)
    return caller


async def _settings(request: Request) -> OutcomesSettings:
    settings = request.app.state.runtime.settings
    assert isinstance(settings, OutcomesSettings)
    return settings


async def _outbox(request: Request) -> Outbox:
    outbox = request.app.state.runtime.outbox
    assert outbox is not None
    return outbox


ClaimantDep = Annotated[Caller, Depends(_claimant)]
ReaderDep = Annotated[Caller, Depends(_reader)]
ProgrammeOfficeDep = Annotated[Caller, Depends(_programme_office)]
SettingsDep = Annotated[OutcomesSettings, Depends(_settings)]
OutboxDep = Annotated[Outbox, Depends(_outbox)]


def uk_today(now: datetime) -> date:
    return now.astimezone(UK).date()


def checked_text(value: str | None, field: str) -> str | None:
    """A free-text query parameter PostgreSQL can compare: ``422`` naming it otherwise."""
    if value is None:
        return None
    try:
        return clean_text(value)
    except ValueError as exc:
        raise unprocessable(FieldError(field, str(exc))) from None


async def wait_for_programme(session: AsyncSession, settings: OutcomesSettings, code: str) -> None:
    """``422`` naming ``programme`` unless it is (or, within the §8 wait, becomes) known."""
    checked_text(code, "programme")

    async def known() -> bool | None:
        try:
            return True if await store.programme_exists(session, code) else None
        finally:
            # Hand the connection back between looks: the consumer storing the
            # definition draws on the same pool, and a burst of waiting calls would
            # otherwise hold every connection until they all time out.
            await session.rollback()

    if not await wait_for(known, timeout=settings.platform.consistency_wait_seconds):
        raise unprocessable(FieldError("programme", "is not a known programme"))
