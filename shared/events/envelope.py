"""The envelope every event travels in, and how payloads are registered and checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Base of every event payload: a versioned, named schema.

    Subclasses set ``event_type`` (also the routing key, ``<producer>.<aggregate>.<past
    tense>``) and ``event_version``. A change that removes or retypes a field is a new
    version; consumers say which versions they handle.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    producer: str
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate(orjson.loads(body))


P = TypeVar("P", bound=EventPayload)

REGISTRY: dict[tuple[str, int], type[EventPayload]] = {}


def register(payload_cls: type[P]) -> type[P]:
    key = (payload_cls.event_type, payload_cls.event_version)
    if key in REGISTRY and REGISTRY[key] is not payload_cls:
        raise ValueError(f"event {key} registered twice")
    REGISTRY[key] = payload_cls
    return payload_cls


def new_envelope(
    payload: EventPayload, *, producer: str, occurred_at: datetime | None = None
) -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        payload=payload.model_dump(mode="json"),
    )


def parse_payload(envelope: Envelope) -> EventPayload:
    """The envelope's payload as its registered schema (raises if unknown or invalid)."""
    try:
        payload_cls = REGISTRY[(envelope.type, envelope.version)]
    except KeyError as exc:
        raise UnknownEvent(f"no schema for {envelope.type} v{envelope.version}") from exc
    return payload_cls.model_validate(envelope.payload)


class UnknownEvent(Exception):
    pass
