"""Request and response models of the gateway's own routes (they document the API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.gateway import domain
from shared.caller import PartnerKind
from shared.errors import ProblemOut

# No control characters: PostgreSQL text cannot even hold NUL (it was a 500).
PartnerName = Annotated[
    str,
    StringConstraints(
        strict=True,
        strip_whitespace=True,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerIn(_In):
    name: PartnerName
    kind: PartnerKind


class PartnerOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: PartnerKind
    created_at: datetime


class PartnerCreated(PartnerOut):
    api_key: str = Field(description="Shown once; only a hash of it is stored.")
    key_id: uuid.UUID
    key_prefix: str


class PartnerList(BaseModel):
    items: list[PartnerOut]
    next_cursor: str | None


KeyStatus = Literal["active", "expiring", "expired", "revoked"]


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    partner_id: uuid.UUID
    prefix: str = Field(description="The public part of the key, for telling keys apart.")
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


class ApiKeyIssued(ApiKeyOut):
    api_key: str = Field(description="Shown once; only a hash of it is stored.")


class RotateIn(_In):
    overlap_seconds: Annotated[int, Field(strict=True, ge=0, le=90 * 24 * 3600)] | None = Field(
        default=None,
        description="How long the old key keeps working (default: the gateway's setting).",
    )


class KeyRotated(BaseModel):
    new_key: ApiKeyIssued
    old_key: ApiKeyOut


class ProgrammeOut(domain.ProgrammeDefinition):
    model_config = ConfigDict(extra="ignore")

    created_at: datetime


class ProgrammeList(BaseModel):
    items: list[ProgrammeOut]


WebhookEvent = Literal["referral.status_changed"]


class WebhookIn(_In):
    url: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=domain.MAX_WEBHOOK_URL_LENGTH)
    ]
    events: Annotated[list[WebhookEvent], Field(min_length=1, max_length=10)]


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[WebhookEvent]
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (Standard Webhooks); shown once.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


DeliveryStatus = Literal["pending", "retrying", "delivered", "failed", "cancelled"]


class DeliveryOut(BaseModel):
    event_id: uuid.UUID = Field(description="Also the webhook-id header of every attempt.")
    type: str
    referral_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="Set while the delivery is open.")
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class AuditEntry(BaseModel):
    at: datetime
    actor: Literal["partner", "admin", "anonymous"]
    partner_id: uuid.UUID | None
    key_id: uuid.UUID | None
    method: str
    route: str = Field(description="The path template called, e.g. /v1/referrals/{id}.")
    resource_id: str | None
    status: int
    request_id: str | None
    duration_ms: int


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


def problems(*statuses: int) -> dict[int | str, dict]:
    return {
        status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
        for status in statuses
    }
