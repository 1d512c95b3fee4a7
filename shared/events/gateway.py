"""Events the gateway publishes."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from shared.events.envelope import EventPayload, register


class ProviderArea(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    partner_id: uuid.UUID
    local_authorities: list[str]


@register
class ProgrammeDefined(EventPayload):
    """A programme's whole definition (contract §1). Definitions never change once made."""

    event_type = "gateway.programme.defined"

    code: str
    name: str
    eligible_benefits: list[str]
    min_age: int
    max_age: int
    support_weeks: int
    min_job_hours: float
    sustainment_weeks: int
    providers: list[ProviderArea]
    tariff: dict[str, int]
    targets: dict[str, float]
