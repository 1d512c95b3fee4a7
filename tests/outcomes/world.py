"""A programme's facts, published to the real broker as the gateway and casework publish
them, and helpers to claim outcomes and read what the outcomes service decided.

The world also answers outcomes' requests for a participant's employment, as casework
does, with the episodes it has recorded through :meth:`World.employ` (or
:meth:`World.record_in_casework`: a change casework made whose event is still on its way).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime
from typing import Any

import httpx
from sqlalchemy import select

from pathways.sandbox import Sandbox
from services.outcomes import store
from shared.events.casework import (
    EmploymentEnded,
    EmploymentStarted,
    EpisodeState,
    ParticipantAttached,
    ParticipantFactsConfirmed,
)
from shared.events.envelope import Envelope, EventPayload, new_envelope
from shared.events.gateway import ProgrammeDefined, ProviderArea
from shared.events.outcomes import ParticipantFactsRequested
from tests.support.apps import RunningApp
from tests.support.events import Answerer, eventually, publish

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
ATTACHED_ON = date(2024, 2, 20)
PAYSLIP = [{"kind": "payslip", "reference": "PS-1", "dated": "2024-05-31"}]
SELF_DECLARED = [{"kind": "self_declaration", "reference": "SD-1", "dated": "2024-05-02"}]


class World:
    def __init__(self, sandbox: Sandbox, app: RunningApp) -> None:
        self.sandbox = sandbox
        self.app = app
        self.programme = f"prog-{secrets.token_hex(4)}"
        self.provider = uuid.uuid4()
        self.other_provider = uuid.uuid4()
        self.office = uuid.uuid4()
        self._clients: dict[tuple[uuid.UUID, str], httpx.AsyncClient] = {}
        # What casework would answer with: each participant's episodes, latest state.
        self.casework_episodes: dict[
            uuid.UUID, dict[uuid.UUID, EmploymentStarted | EmploymentEnded]
        ] = {}
        self.facts_requests: list[ParticipantFactsRequested] = []
        self.answering = True  # False: casework is down, requests go unanswered
        self._answering: Answerer | None = None

    # --- callers ------------------------------------------------------------------------

    def client(self, partner_id: uuid.UUID | None = None, kind: str = "provider"):
        key = (partner_id or self.provider, kind)
        if key not in self._clients:
            self._clients[key] = self.app.client(*key)
        return self._clients[key]

    @property
    def provider_client(self) -> httpx.AsyncClient:
        return self.client(self.provider)

    @property
    def office_client(self) -> httpx.AsyncClient:
        return self.client(self.office, "programme_office")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        if self._answering is not None:
            await self._answering.close()

    # --- casework's answers -------------------------------------------------------------

    async def answer_facts_requests(self) -> None:
        """Answer every ``facts_requested`` from now on, as casework would."""
        self._answering = Answerer(
            self.sandbox, ParticipantFactsRequested.event_type, self._answer, producer="casework"
        )
        await self._answering.start()

    def _answer(self, request: EventPayload) -> ParticipantFactsConfirmed | None:
        assert isinstance(request, ParticipantFactsRequested)
        self.facts_requests.append(request)
        return self.facts_of(request) if self.answering else None

    def facts_of(self, request: ParticipantFactsRequested) -> ParticipantFactsConfirmed:
        recorded = list(self.casework_episodes.get(request.participant_id, {}).values())
        return ParticipantFactsConfirmed(
            request_id=request.request_id,
            participant_id=request.participant_id,
            known=True,
            programme=self.programme,
            provider_id=recorded[0].provider_id if recorded else self.provider,
            episodes=[
                EpisodeState(
                    episode_id=e.episode_id,
                    started_on=e.started_on,
                    ended_on=e.ended_on,
                    hours_per_week=e.hours_per_week,
                    self_employed=e.self_employed,
                )
                for e in recorded
            ],
        )

    def record_in_casework(self, event: EmploymentStarted | EmploymentEnded) -> None:
        self.casework_episodes.setdefault(event.participant_id, {})[event.episode_id] = event

    # --- facts --------------------------------------------------------------------------

    def programme_event(self, **overrides: Any) -> ProgrammeDefined:
        values: dict[str, Any] = {
            "code": self.programme,
            "name": "Working Well Expansion",
            "eligible_benefits": ["ESA", "JSA", "UC"],
            "min_age": 18,
            "max_age": 66,
            "support_weeks": 104,
            "min_job_hours": 16,
            "sustainment_weeks": 50,
            "providers": [
                ProviderArea(partner_id=self.provider, local_authorities=["Wigan"]),
                ProviderArea(partner_id=self.other_provider, local_authorities=["Bolton"]),
            ],
            "tariff": TARIFF,
            "targets": {"job_start_rate": 0.2, "sustainment_rate": 0.75},
        }
        values.update(overrides)
        return ProgrammeDefined(**values)

    async def define_programme(self, *, wait: bool = True, **overrides: Any) -> None:
        await publish(self.sandbox, self.programme_event(**overrides), producer="gateway")
        if wait:
            await self.until_stored(store.programmes, store.programmes.c.code == self.programme)

    def attachment_event(
        self,
        participant_id: uuid.UUID | None = None,
        *,
        provider: uuid.UUID | None = None,
        attached_on: date = ATTACHED_ON,
    ) -> ParticipantAttached:
        return ParticipantAttached(
            participant_id=participant_id or uuid.uuid4(),
            referral_id=uuid.uuid4(),
            programme=self.programme,
            provider_id=provider or self.provider,
            attached_on=attached_on,
        )

    async def attach(
        self,
        *,
        provider: uuid.UUID | None = None,
        attached_on: date = ATTACHED_ON,
        wait: bool = True,
    ) -> uuid.UUID:
        event = self.attachment_event(provider=provider, attached_on=attached_on)
        await publish(self.sandbox, event, producer="casework")
        if wait:
            await self.until_stored(
                store.participants, store.participants.c.participant_id == event.participant_id
            )
        return event.participant_id

    def employment_event(
        self,
        participant_id: uuid.UUID,
        started_on: date,
        ended_on: date | None = None,
        *,
        hours: float = 20,
        self_employed: bool = False,
        episode_id: uuid.UUID | None = None,
        provider: uuid.UUID | None = None,
    ) -> EmploymentStarted | EmploymentEnded:
        cls = EmploymentEnded if ended_on else EmploymentStarted
        return cls(
            episode_id=episode_id or uuid.uuid4(),
            participant_id=participant_id,
            programme=self.programme,
            provider_id=provider or self.provider,
            started_on=started_on,
            ended_on=ended_on,
            hours_per_week=hours,
            self_employed=self_employed,
        )

    async def employ(
        self,
        participant_id: uuid.UUID,
        started_on: date,
        ended_on: date | None = None,
        *,
        wait: bool = True,
        **kwargs: Any,
    ) -> uuid.UUID:
        event = self.employment_event(participant_id, started_on, ended_on, **kwargs)
        self.record_in_casework(event)
        await publish(self.sandbox, event, producer="casework")
        if wait:
            await self.until_stored(
                store.employment_episodes,
                store.employment_episodes.c.episode_id == event.episode_id,
            )
        return event.episode_id

    async def until_stored_participant(self, participant_id: uuid.UUID) -> None:
        await self.until_stored(
            store.participants, store.participants.c.participant_id == participant_id
        )

    async def until_stored_episode(self, episode_id: uuid.UUID) -> None:
        await self.until_stored(
            store.employment_episodes, store.employment_episodes.c.episode_id == episode_id
        )

    async def until_stored(self, table, condition) -> None:
        async def stored() -> None:
            async with self.app.runtime.engine.connect() as conn:
                row = (await conn.execute(select(table).where(condition))).first()
            assert row is not None, f"nothing in {table.name} yet"

        await eventually(stored, timeout=15)

    # --- claims -------------------------------------------------------------------------

    def claim_body(
        self,
        participant_id: uuid.UUID,
        type_: str = "job_start",
        achieved_on: str = "2024-05-01",
        *,
        employment_id: uuid.UUID | None = None,
        evidence: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "participant_id": str(participant_id),
            "type": type_,
            "achieved_on": achieved_on,
            "evidence": PAYSLIP if evidence is None else evidence,
        }
        if employment_id is not None:
            body["employment_id"] = str(employment_id)
        body.update(extra)
        return body

    async def claim(
        self, participant_id: uuid.UUID, type_: str = "job_start", *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Post a claim as the provider and return it once decided."""
        client = kwargs.pop("client", None) or self.provider_client
        response = await client.post(
            "/v1/outcome-claims", json=self.claim_body(participant_id, type_, *args, **kwargs)
        )
        assert response.status_code == 201, response.text
        return await self.decided(response.json()["id"], client=client)

    async def decided(
        self, claim_id: str, *, client: httpx.AsyncClient | None = None, timeout: float = 15
    ) -> dict[str, Any]:
        client = client or self.provider_client

        async def check() -> dict[str, Any]:
            response = await client.get(f"/v1/outcome-claims/{claim_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] != "submitted", "not decided yet"
            return body

        return await eventually(check, timeout=timeout)

    async def job_start(
        self, participant_id: uuid.UUID, started_on: date, ended_on: date | None = None
    ) -> dict[str, Any]:
        """An employment episode and its validated job start claim."""
        episode = await self.employ(participant_id, started_on, ended_on)
        claim = await self.claim(
            participant_id, "job_start", started_on.isoformat(), employment_id=episode
        )
        assert claim["status"] == "validated", claim
        return claim

    async def statement(
        self, period: str, *, provider: uuid.UUID | None = None, programme: str | None = None
    ) -> dict[str, Any]:
        response = await self.client(provider or self.provider).get(
            "/v1/payments/statement",
            params={"programme": programme or self.programme, "period": period},
        )
        assert response.status_code == 200, response.text
        return response.json()


async def publish_at(sandbox: Sandbox, payload: EventPayload, occurred_at: datetime) -> None:
    """Publish one event stamped ``occurred_at`` (a late retry of an older event)."""
    await republish(sandbox, new_envelope(payload, producer="casework", occurred_at=occurred_at))


async def republish(sandbox: Sandbox, envelope: Envelope) -> None:
    """Put an envelope on the exchange again, as a broker redelivery would."""
    await publish(sandbox, envelope)
