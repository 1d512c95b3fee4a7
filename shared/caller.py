"""Who is calling: the partner the gateway authenticated, passed on in signed headers.

The gateway is the only door partners use. It forwards each call with the partner's id
and kind, a timestamp, and an HMAC-SHA256 over those plus the method and path, keyed
with ``PATHWAYS_INTERNAL_SECRET``. A service trusts a caller only if that signature
verifies, so a request that reaches a service directly, or was altered on the way, is
refused with ``401``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

from shared.errors import Problem


class PartnerKind(StrEnum):
    JCP = "jcp"
    PROBATION = "probation"
    TREATMENT = "treatment"
    PROVIDER = "provider"
    PROGRAMME_OFFICE = "programme_office"


REFERRER_KINDS = frozenset({PartnerKind.JCP, PartnerKind.PROBATION, PartnerKind.TREATMENT})

PARTNER_ID_HEADER = "x-pathways-partner-id"
PARTNER_KIND_HEADER = "x-pathways-partner-kind"
TIMESTAMP_HEADER = "x-pathways-timestamp"
SIGNATURE_HEADER = "x-pathways-signature"
SIGNED_HEADERS = (PARTNER_ID_HEADER, PARTNER_KIND_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

# Clock skew tolerated between gateway and service, and the replay window it implies.
MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class Caller:
    partner_id: uuid.UUID
    kind: PartnerKind

    @property
    def is_referrer(self) -> bool:
        return self.kind in REFERRER_KINDS

    @property
    def is_provider(self) -> bool:
        return self.kind is PartnerKind.PROVIDER

    @property
    def is_programme_office(self) -> bool:
        return self.kind is PartnerKind.PROGRAMME_OFFICE


def _signature(
    secret: str, partner_id: str, kind: str, timestamp: str, method: str, target: str
) -> str:
    message = "\n".join((partner_id, kind, timestamp, method.upper(), target)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def request_target(path: str, query: str | bytes) -> str:
    """What is signed: the decoded path and the raw query string."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    return f"{path}?{query}" if query else path


def sign(
    secret: str,
    *,
    partner_id: uuid.UUID | str,
    kind: str,
    method: str,
    target: str,
    now: float | None = None,
) -> dict[str, str]:
    """Headers that make a request to a service come from the gateway."""
    timestamp = str(int(now if now is not None else time.time()))
    pid = str(partner_id)
    return {
        PARTNER_ID_HEADER: pid,
        PARTNER_KIND_HEADER: kind,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: _signature(secret, pid, kind, timestamp, method, target),
    }


def verify(
    secret: str,
    *,
    headers: dict[str, str] | object,
    method: str,
    target: str,
    now: float | None = None,
) -> Caller:
    get = headers.get  # type: ignore[attr-defined]
    partner_id, kind, timestamp, signature = (get(h) for h in SIGNED_HEADERS)
    if not (partner_id and kind and timestamp and signature):
        raise _not_through_gateway()
    expected = _signature(secret, partner_id, kind, timestamp, method, target)
    if not hmac.compare_digest(expected, signature):
        raise _not_through_gateway()
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
        caller = Caller(uuid.UUID(partner_id), PartnerKind(kind))
    except ValueError as exc:
        raise _not_through_gateway() from exc
    if age > MAX_AGE_SECONDS:
        raise _not_through_gateway()
    return caller


def _not_through_gateway() -> Problem:
    return Problem(
        401, "Calls to this service must come through the Pathways gateway.", title="Unauthorized"
    )


async def get_caller(request: Request) -> Caller:
    secret = request.app.state.runtime.settings.platform.internal_secret.get_secret_value()
    target = request_target(request.scope["path"], request.scope.get("query_string", b""))
    return verify(secret, headers=request.headers, method=request.method, target=target)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_kind(caller: Caller, *kinds: PartnerKind) -> None:
    """Defence in depth: the gateway already enforces kinds, services check again."""
    if caller.kind not in kinds:
        raise Problem(403, "Your partner kind may not take this action.")
