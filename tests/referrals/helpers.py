"""Helpers for the referrals tests: partners calling the service, programmes defined
by event, and looks into what the service stored and published."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from pathways.sandbox import Sandbox
from services.referrals import store
from shared.events.envelope import Envelope
from shared.events.gateway import ProgrammeDefined, ProviderArea
from tests.support.apps import RunningApp
from tests.support.events import eventually, outbox_events, publish

STATUS_CHANGED = "referrals.referral.status_changed"
ACCEPTED = "referrals.referral.accepted"


@dataclass(frozen=True)
class Partner:
    """A partner calling the referrals service, signed as the gateway would sign it."""

    app: RunningApp
    id: uuid.UUID
    kind: str

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async with self.app.client(self.id, self.kind) as client:
            return await client.request(method, url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def refer(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await self.post("/v1/referrals", json=body, **kwargs)

    async def referral(self, referral_id: str) -> dict[str, Any]:
        response = await self.get(f"/v1/referrals/{referral_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def on(self, app: RunningApp) -> Partner:
        """The same partner calling another instance of the service."""
        return Partner(app, self.id, self.kind)


def partner(app: RunningApp, kind: str) -> Partner:
    return Partner(app, uuid.uuid4(), kind)


@dataclass(frozen=True)
class Programme:
    code: str
    provider: uuid.UUID  # covers Wigan and Bolton
    other_provider: uuid.UUID  # covers Manchester


def programme_defined(
    code: str, areas: dict[uuid.UUID, list[str]], **overrides: Any
) -> ProgrammeDefined:
    values: dict[str, Any] = {
        "code": code,
        "name": "Working Well Expansion",
        "eligible_benefits": ["ESA", "JSA", "UC"],
        "min_age": 18,
        "max_age": 66,
        "support_weeks": 104,
        "min_job_hours": 16,
        "sustainment_weeks": 50,
        "providers": [
            ProviderArea(partner_id=pid, local_authorities=las) for pid, las in areas.items()
        ],
        "tariff": {"attachment": 30000, "job_start": 120000},
        "targets": {"job_start_rate": 0.2, "sustainment_rate": 0.75},
    }
    values.update(overrides)
    return ProgrammeDefined(**values)


def new_code() -> str:
    return f"prog-{secrets.token_hex(4)}"


async def programme_stored(app: RunningApp, code: str) -> None:
    async def check() -> None:
        async with app.runtime.engine.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(store.programmes.c.code).where(store.programmes.c.code == code)
                )
            ).first()
        assert found is not None, f"programme {code} not stored yet"

    await eventually(check)


async def define_programme(
    sandbox: Sandbox, app: RunningApp, areas: dict[uuid.UUID, list[str]], **overrides: Any
) -> str:
    code = overrides.pop("code", None) or new_code()
    await publish(sandbox, programme_defined(code, areas, **overrides))
    await programme_stored(app, code)
    return code


async def stored_count(app: RunningApp, **where: Any) -> int:
    r = store.referrals.c
    query = sa.select(sa.func.count()).select_from(store.referrals)
    for column, value in where.items():
        query = query.where(getattr(r, column) == value)
    async with app.runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


async def events_of(
    app: RunningApp, referral_id: str, event_type: str | None = None
) -> list[Envelope]:
    """The referral's events in the outbox, in the order they were written."""
    return [
        env
        for env in await outbox_events(app.runtime, event_type)
        if env.payload.get("referral_id") == str(referral_id)
    ]


async def events_by_referrer(app: RunningApp, referrer_id: uuid.UUID) -> list[Envelope]:
    return [
        env
        for env in await outbox_events(app.runtime, STATUS_CHANGED)
        if env.payload.get("referrer_id") == str(referrer_id)
    ]


def statuses(referral: dict[str, Any]) -> list[str]:
    return [entry["status"] for entry in referral["history"]]


async def dead_lettered_event_ids(sandbox: Sandbox, service: str = "referrals") -> set[str]:
    """Event ids sitting in the service's dead-letter queue (left there)."""
    import aio_pika

    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"pathways.{service}.dlq", passive=True)
        ids: set[str] = set()
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            ids.add(str(message.message_id))
        # Unacknowledged messages go back on the queue when the channel closes.
    return ids


def attached_event(referral: dict[str, Any], provider_id: uuid.UUID, **changes: Any):
    from shared.events.casework import ParticipantAttached

    values: dict[str, Any] = {
        "participant_id": uuid.uuid4(),
        "referral_id": uuid.UUID(referral["id"]),
        "programme": referral["programme"],
        "provider_id": provider_id,
        "attached_on": "2024-02-20",
    }
    values.update(changes)
    return ParticipantAttached(**values)


def attachment_request(referral: dict[str, Any], provider_id: uuid.UUID, **changes: Any):
    """Casework asking to attach ``referral`` for a new participant."""
    from shared.events.casework import AttachmentRequested

    values: dict[str, Any] = {
        "participant_id": uuid.uuid4(),
        "referral_id": uuid.UUID(referral["id"]),
        "provider_id": provider_id,
        "attached_on": "2024-02-20",
    }
    values.update(changes)
    return AttachmentRequested(**values)
