"""Build a small programme's history as the events other services would publish, feed
it to the reporting service through the real broker, and read its reports.

A :class:`Story` is a list of payloads in the order they will be published, built with
readable helpers (``referral``, ``attach``, ``claim``, ``accrual``, ``assessment``);
every figure a test expects is worked out by hand from the story it builds.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pathways.sandbox import Sandbox
from services.reporting.store.tables import event_log
from shared.caller import PartnerKind
from shared.events.casework import AssessmentRecorded, ParticipantAttached
from shared.events.envelope import Envelope, EventPayload
from shared.events.gateway import ProgrammeDefined, ProviderArea
from shared.events.outcomes import AccrualRecorded, ClaimDecided
from shared.events.referrals import ReferralStatusChanged
from tests.support.apps import RunningApp
from tests.support.events import publish

TARIFF = {
    "attachment": 30000,
    "job_start": 120000,
    "sustained_13": 40000,
    "sustained_26": 40000,
    "sustained_50": 60000,
    "qualification": 15000,
    "volunteering_start": 5000,
    "education_start": 5000,
}
BASE_TIME = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


@dataclass
class Story:
    """One programme's events, in publishing order."""

    code: str = field(default_factory=lambda: f"rep-{secrets.token_hex(4)}")
    sustainment_weeks: int = 50
    job_start_rate: float = 0.2
    providers: dict[str, uuid.UUID] = field(default_factory=dict)  # local authority -> provider
    events: list[EventPayload] = field(default_factory=list)
    _clock: datetime = BASE_TIME

    def __post_init__(self) -> None:
        if not self.providers:
            north, south = uuid.uuid4(), uuid.uuid4()
            self.providers = {"Wigan": north, "Bolton": north, "Bury": south}

    def tick(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    def define(self) -> Story:
        areas: dict[uuid.UUID, list[str]] = {}
        for la, provider in self.providers.items():
            areas.setdefault(provider, []).append(la)
        self.events.append(
            ProgrammeDefined(
                code=self.code,
                name=f"Programme {self.code}",
                eligible_benefits=["ESA", "JSA", "UC"],
                min_age=18,
                max_age=66,
                support_weeks=104,
                min_job_hours=16,
                sustainment_weeks=self.sustainment_weeks,
                providers=[
                    ProviderArea(partner_id=p, local_authorities=a) for p, a in areas.items()
                ],
                tariff=TARIFF,
                targets={"job_start_rate": self.job_start_rate, "sustainment_rate": 0.75},
            )
        )
        return self

    def referral(
        self,
        referred_on: str,
        *,
        statuses: tuple[str, ...] = ("received", "accepted"),
        local_authority: str = "Wigan",
        source: str = "jcp",
        benefit: str = "ESA",
        gender: str | None = "female",
        age_band: str | None = "35-49",
        referral_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A referral moving through ``statuses`` (each a status_changed event)."""
        referral_id = referral_id or uuid.uuid4()
        provider = self.providers.get(local_authority)
        previous = None
        routed = False
        for status in statuses:
            routed = routed or status == "accepted"
            self.events.append(
                ReferralStatusChanged(
                    referral_id=referral_id,
                    external_ref=f"EXT-{secrets.token_hex(3)}",
                    programme=self.code,
                    source=source,
                    referrer_id=uuid.uuid4(),
                    provider_id=provider if routed else None,
                    status=status,
                    previous_status=previous,
                    reasons=["outside_area"] if status == "rejected" else [],
                    duplicate_of=uuid.uuid4() if status == "duplicate" else None,
                    referred_on=d(referred_on),
                    local_authority=local_authority,
                    benefit=benefit,
                    gender=gender,
                    age_band=age_band,
                    changed_at=self.tick(),
                )
            )
            previous = status
        return referral_id

    def attach(
        self,
        referral_id: uuid.UUID,
        attached_on: str,
        *,
        local_authority: str = "Wigan",
        participant_id: uuid.UUID | None = None,
        accrue: bool = True,
    ) -> uuid.UUID:
        """The attachment (and, by default, its attachment accrual on the same day)."""
        participant_id = participant_id or uuid.uuid4()
        provider = self.providers[local_authority]
        self.events.append(
            ParticipantAttached(
                participant_id=participant_id,
                referral_id=referral_id,
                programme=self.code,
                provider_id=provider,
                attached_on=d(attached_on),
            )
        )
        if accrue:
            self.accrual(participant_id, "attachment", TARIFF["attachment"], attached_on, provider)
        return participant_id

    def claim(
        self,
        participant_id: uuid.UUID,
        type: str,
        achieved_on: str,
        provider: uuid.UUID,
        *,
        status: str = "validated",
        accrue: bool = True,
        claim_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        claim_id = claim_id or uuid.uuid4()
        self.events.append(
            ClaimDecided(
                claim_id=claim_id,
                participant_id=participant_id,
                programme=self.code,
                provider_id=provider,
                type=type,
                status=status,
                achieved_on=d(achieved_on),
                reasons=["missing_evidence"] if status == "rejected" else [],
                decided_at=self.tick(),
            )
        )
        if accrue and status == "validated":
            self.accrual(participant_id, type, TARIFF[type], achieved_on, provider, claim_id)
        return claim_id

    def accrual(
        self,
        participant_id: uuid.UUID,
        kind: str,
        amount: int,
        accrued_on: str,
        provider: uuid.UUID,
        claim_id: uuid.UUID | None = None,
    ) -> None:
        self.events.append(
            AccrualRecorded(
                line_id=uuid.uuid4(),
                programme=self.code,
                provider_id=provider,
                participant_id=participant_id,
                claim_id=claim_id,
                kind=kind,
                amount_pence=amount,
                accrued_on=d(accrued_on),
            )
        )

    def assessment(
        self,
        participant_id: uuid.UUID,
        kind: str,
        assessed_on: str,
        barriers: dict[str, int],
        provider: uuid.UUID,
    ) -> None:
        self.events.append(
            AssessmentRecorded(
                assessment_id=uuid.uuid4(),
                participant_id=participant_id,
                programme=self.code,
                provider_id=provider,
                kind=kind,
                assessed_on=d(assessed_on),
                barriers=barriers,
                wellbeing=None,
            )
        )


async def reporting(apps: Any) -> RunningApp:
    """The in-process reporting service, once its queue is bound.

    ``apps.get`` returns when the broker is connected, which can be before the consumer
    has declared its queue and bindings: an event published in between is unroutable
    and silently dropped. So wait for the consumer to be ready.
    """
    rep = await apps.get("reporting")
    assert rep.runtime.consumer is not None
    await asyncio.wait_for(rep.runtime.consumer.ready.wait(), timeout=30)
    return rep


async def feed(sandbox: Sandbox, rep: RunningApp, events: list[EventPayload]) -> list[Envelope]:
    """Publish on the real broker and wait until reporting has handled every event."""
    assert rep.runtime.consumer is not None and rep.runtime.consumer.ready.is_set()
    envelopes = await publish(sandbox, *events)
    await wait_handled(rep, [e.event_id for e in envelopes])
    return envelopes


async def wait_handled(
    rep: RunningApp | AsyncEngine, event_ids: list[uuid.UUID], timeout: float = 20
) -> None:
    """Wait until reporting's event log (so its projections) has every one of these."""
    engine = rep if isinstance(rep, AsyncEngine) else rep.runtime.engine
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    wanted = set(event_ids)
    while True:
        async with engine.connect() as conn:
            seen = (
                await conn.execute(select(func.count()).where(event_log.c.event_id.in_(wanted)))
            ).scalar_one()
        if seen == len(wanted):
            return
        if loop.time() > deadline:
            raise AssertionError(f"reporting handled {seen} of {len(wanted)} events")
        await asyncio.sleep(0.05)


def office(rep: RunningApp) -> httpx.AsyncClient:
    return rep.client(uuid.uuid4(), PartnerKind.PROGRAMME_OFFICE)


async def get_report(
    client: httpx.AsyncClient, report: str, programme: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(f"/v1/reports/{report}", params={"programme": programme, **params})
    assert response.status_code == 200, response.text
    return response.json()


def row(report: dict[str, Any], key: str = "all") -> dict[str, Any]:
    """The performance row with this key."""
    matches = [r for r in report["rows"] if r["key"] == key]
    assert len(matches) == 1, report["rows"]
    return matches[0]


def keys(report: dict[str, Any]) -> list[str]:
    return [r["key"] for r in report["rows"]]
