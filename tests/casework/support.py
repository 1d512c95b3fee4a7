"""Helpers for the casework tests: referrals as the referrals service announces them,
referrals' answers to the attachments casework asks for, and attaching through the
casework API."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from pathways.sandbox import Sandbox
from services.casework.api import router
from services.casework.domain import uk_today
from services.casework.store.tables import referrals
from shared.events.casework import AttachmentRequested
from shared.events.envelope import EventPayload
from shared.events.referrals import (
    AttachmentAnswered,
    Circumstances,
    PersonDetails,
    ReferralAccepted,
    ReferralStatusChanged,
)
from tests.support.apps import RunningApp
from tests.support.builders import random_nino
from tests.support.events import Answerer, eventually, publish

REFERRED_ON = date(2024, 2, 3)


def today() -> date:
    return uk_today(datetime.now(UTC))


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)


def openapi() -> dict[str, Any]:
    """The casework routes' OpenAPI document. Built on a bare app: the service's own
    `create_app` would configure this process's logging as casework's, for every test."""
    app = FastAPI(title="Pathways casework")
    app.include_router(router)
    return app.openapi()


def programme_code() -> str:
    return f"cw-{secrets.token_hex(4)}"


def person(**overrides: Any) -> PersonDetails:
    values: dict[str, Any] = {
        "given_name": "Sam",
        "family_name": f"Taylor-{secrets.token_hex(3)}",
        "date_of_birth": date(1981, 5, 17),
        "nino": random_nino(),
        "postcode": "WN1 1AA",
        "local_authority": "Wigan",
        "gender": "female",
        "disability": True,
        "phone": "07700900123",
    }
    values.update(overrides)
    return PersonDetails(**values)


def accepted_event(
    referral_id: uuid.UUID, provider_id: uuid.UUID, *, programme: str, referred_on: date
) -> ReferralAccepted:
    return ReferralAccepted(
        referral_id=referral_id,
        programme=programme,
        provider_id=provider_id,
        source="jcp",
        referred_on=referred_on,
        person=person(),
        circumstances=Circumstances(
            benefit="ESA", months_out_of_work=30, criminal_justice="licence", treatment=None
        ),
    )


def status_event(
    referral_id: uuid.UUID,
    status: str,
    *,
    provider_id: uuid.UUID | None,
    programme: str,
    referred_on: date,
    changed_at: datetime | None = None,
    previous: str | None = None,
    reasons: list[str] | None = None,
) -> ReferralStatusChanged:
    return ReferralStatusChanged(
        referral_id=referral_id,
        external_ref=f"JCP-{secrets.token_hex(4)}",
        programme=programme,
        source="jcp",
        referrer_id=uuid.uuid4(),
        provider_id=provider_id,
        status=status,
        previous_status=previous,
        reasons=reasons or [],
        duplicate_of=None,
        referred_on=referred_on,
        local_authority="Wigan",
        benefit="ESA",
        gender="female",
        age_band="35-49",
        changed_at=changed_at or datetime.now(UTC),
    )


async def referral_status(cw: RunningApp, referral_id: uuid.UUID) -> str | None:
    async with cw.runtime.engine.connect() as conn:
        row = (
            await conn.execute(
                select(referrals.c.status).where(referrals.c.referral_id == referral_id)
            )
        ).first()
    return row.status if row else None


async def until_status(cw: RunningApp, referral_id: uuid.UUID, status: str) -> None:
    async def check() -> None:
        assert await referral_status(cw, referral_id) == status

    await eventually(check)


async def until_person_known(cw: RunningApp, referral_id: uuid.UUID) -> None:
    """Wait until the referral's accepted event (with the person's details) is applied."""

    async def check() -> None:
        async with cw.runtime.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(referrals.c.person).where(referrals.c.referral_id == referral_id)
                )
            ).first()
        assert row is not None and row.person is not None

    await eventually(check)


@dataclass
class ReferralsDesk:
    """Answers casework's attachment requests as the referrals service would, for the
    referrals these tests announced: granted, unless the referral was withdrawn or
    declined meanwhile (``refuse``) or referrals is down (``answering`` false)."""

    announced: set[uuid.UUID] = field(default_factory=set)
    refuse: dict[uuid.UUID, str] = field(default_factory=dict)
    requests: list[AttachmentRequested] = field(default_factory=list)
    answering: bool = True

    def answer(self, request: EventPayload) -> AttachmentAnswered | None:
        assert isinstance(request, AttachmentRequested)
        if request.referral_id not in self.announced:
            return None  # another test's referral, or the real referrals service's
        self.requests.append(request)
        if not self.answering:
            return None
        refused_as = self.refuse.get(request.referral_id)
        return AttachmentAnswered(
            referral_id=request.referral_id,
            participant_id=request.participant_id,
            granted=refused_as is None,
            status=refused_as or "attached",
        )


@dataclass
class Casework:
    """The casework app with a sandbox to publish referral events into, and referrals'
    answers to its attachment requests (``referrals``)."""

    app: RunningApp
    sandbox: Sandbox
    referrals: ReferralsDesk = field(default_factory=ReferralsDesk)
    _answerer: Answerer | None = None

    async def start(self) -> None:
        self._answerer = Answerer(
            self.sandbox,
            AttachmentRequested.event_type,
            self.referrals.answer,
            producer="referrals",
        )
        await self._answerer.start()

    async def close(self) -> None:
        if self._answerer is not None:
            await self._answerer.close()

    def provider(self, provider_id: uuid.UUID | None = None) -> httpx.AsyncClient:
        return self.app.client(provider_id or uuid.uuid4(), "provider")

    def office(self) -> httpx.AsyncClient:
        return self.app.client(uuid.uuid4(), "programme_office")

    def referrer(self, kind: str = "jcp") -> httpx.AsyncClient:
        return self.app.client(uuid.uuid4(), kind)

    async def accepted_referral(
        self,
        provider_id: uuid.UUID,
        *,
        programme: str | None = None,
        referred_on: date = REFERRED_ON,
        wait: bool = True,
        referral_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A referral the referrals service accepted and routed to ``provider_id``."""
        referral_id = referral_id or uuid.uuid4()
        programme = programme or programme_code()
        self.referrals.announced.add(referral_id)
        await publish(
            self.sandbox,
            accepted_event(referral_id, provider_id, programme=programme, referred_on=referred_on),
            status_event(
                referral_id,
                "accepted",
                provider_id=provider_id,
                programme=programme,
                referred_on=referred_on,
                previous="received",
            ),
        )
        if wait:
            await until_status(self.app, referral_id, "accepted")
        return referral_id

    async def participant(
        self,
        client: httpx.AsyncClient,
        provider_id: uuid.UUID,
        *,
        attached_on: date = date(2024, 2, 20),
        key_worker: str = "kw-17",
        programme: str | None = None,
        referred_on: date = REFERRED_ON,
    ) -> dict[str, Any]:
        """An attached participant of ``provider_id`` (``client`` is that provider's)."""
        referral_id = await self.accepted_referral(
            provider_id, programme=programme, referred_on=referred_on
        )
        response = await client.post(
            "/v1/participants",
            json={
                "referral_id": str(referral_id),
                "attached_on": attached_on.isoformat(),
                "key_worker": key_worker,
            },
        )
        assert response.status_code == 201, response.text
        return response.json()

    @contextlib.contextmanager
    def consistency_wait(self, seconds: float) -> Iterator[None]:
        """Shorten the §8 wait for tests that must see it run out."""
        platform = self.app.runtime.settings.platform
        before = platform.consistency_wait_seconds
        platform.consistency_wait_seconds = seconds
        try:
            yield
        finally:
            platform.consistency_wait_seconds = before
