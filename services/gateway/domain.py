"""The gateway's rules as plain functions and dataclasses, no I/O.

* API keys: their format, how they are generated, hashed and checked.
* The routing table: which service owns a partner path, and which partner kinds may
  call it (the authorization matrix of contract §1).
* Token buckets for per-partner rate limits, and what a call costs.
* Programme definitions: what a valid one looks like (contract §1).
* Webhooks: which targets are acceptable, the retry schedule.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import string
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.caller import REFERRER_KINDS, PartnerKind
from shared.errors import FieldError

# --------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------

KEY_SCHEME = "pk_"
KEY_PREFIX_LENGTH = 8
KEY_SECRET_LENGTH = 43  # 43 base-62 characters: 256 bits of entropy
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = len(KEY_SCHEME) + KEY_PREFIX_LENGTH + 1 + KEY_SECRET_LENGTH


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key. ``token`` is shown to the partner once and never stored."""

    prefix: str
    token: str

    @property
    def digest(self) -> bytes:
        return hash_api_key(self.token)


def generate_api_key() -> IssuedKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(KEY_SECRET_LENGTH))
    return IssuedKey(prefix, f"{KEY_SCHEME}{prefix}_{secret}")


def key_prefix(token: str) -> str | None:
    """The public lookup prefix of a well-formed key, or ``None`` for anything else."""
    if len(token) != _KEY_LENGTH or not token.startswith(KEY_SCHEME):
        return None
    prefix_end = len(KEY_SCHEME) + KEY_PREFIX_LENGTH
    if token[prefix_end] != "_":
        return None
    prefix = token[len(KEY_SCHEME) : prefix_end]
    if not all(c in _PREFIX_ALPHABET for c in prefix):
        return None
    return prefix


def hash_api_key(token: str) -> bytes:
    # Keys carry 256 random bits: a fast hash is enough, nothing can be guessed from it,
    # and checking costs microseconds on the hot path (a slow password hash would not).
    return hashlib.sha256(token.encode()).digest()


def key_matches(token: str, digest: bytes) -> bool:
    return hmac.compare_digest(hash_api_key(token), digest)


def bearer_token(header_value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


# --------------------------------------------------------------------------------------
# Routing and the authorization matrix
# --------------------------------------------------------------------------------------

REFERRERS = frozenset(REFERRER_KINDS)
PROVIDER = frozenset({PartnerKind.PROVIDER})
OFFICE = frozenset({PartnerKind.PROGRAMME_OFFICE})
ANY_PARTNER = frozenset(PartnerKind)

Cost = Literal["call", "sessions"]
GATEWAY = "gateway"


@dataclass(frozen=True)
class RouteRule:
    method: str
    template: str
    service: str
    kinds: frozenset[PartnerKind]
    cost: Cost = "call"
    segments: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.split("/")[2:]))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(self.segments, parts, strict=True):
            if expected.startswith("{"):
                if not actual:
                    return None
                params[expected[1:-1]] = actual
            elif expected != actual:
                return None
        return params


def _rule(
    method: str, template: str, service: str, kinds: Iterable[PartnerKind], **kw
) -> RouteRule:
    return RouteRule(method, template, service, frozenset(kinds), **kw)


# Every partner endpoint of the contract, in match order (a literal segment such as
# ``audit-sample`` comes before the ``{id}`` it would otherwise match).
ROUTES: tuple[RouteRule, ...] = (
    _rule("POST", "/v1/referrals", "referrals", REFERRERS | PROVIDER),
    _rule("GET", "/v1/referrals", "referrals", ANY_PARTNER),
    _rule("GET", "/v1/referrals/{id}", "referrals", ANY_PARTNER),
    _rule("POST", "/v1/referrals/{id}/withdraw", "referrals", REFERRERS | PROVIDER),
    _rule("POST", "/v1/referrals/{id}/decline", "referrals", PROVIDER),
    _rule("POST", "/v1/participants", "casework", PROVIDER),
    _rule("GET", "/v1/participants", "casework", PROVIDER | OFFICE),
    _rule("GET", "/v1/participants/{id}", "casework", PROVIDER | OFFICE),
    _rule("GET", "/v1/participants/{id}/sessions", "casework", PROVIDER | OFFICE),
    _rule("POST", "/v1/sessions/bulk", "casework", PROVIDER, cost="sessions"),
    _rule("POST", "/v1/participants/{id}/assessments", "casework", PROVIDER),
    _rule("POST", "/v1/participants/{id}/employment", "casework", PROVIDER),
    _rule("POST", "/v1/participants/{id}/employment/{episode_id}/end", "casework", PROVIDER),
    _rule("POST", "/v1/participants/{id}/exit", "casework", PROVIDER),
    _rule("POST", "/v1/outcome-claims", "outcomes", PROVIDER),
    _rule("GET", "/v1/outcome-claims", "outcomes", PROVIDER | OFFICE),
    _rule("GET", "/v1/outcome-claims/audit-sample", "outcomes", OFFICE),
    _rule("GET", "/v1/outcome-claims/{id}", "outcomes", PROVIDER | OFFICE),
    _rule("POST", "/v1/outcome-claims/{id}/decision", "outcomes", OFFICE),
    _rule("GET", "/v1/payments/statement", "outcomes", PROVIDER | OFFICE),
    _rule("GET", "/v1/reports/performance", "reporting", OFFICE),
    _rule("GET", "/v1/reports/cohorts", "reporting", OFFICE),
    _rule("GET", "/v1/reports/barriers", "reporting", OFFICE),
    _rule("POST", "/v1/webhooks", GATEWAY, ANY_PARTNER),
    _rule("GET", "/v1/webhooks", GATEWAY, ANY_PARTNER),
    _rule("DELETE", "/v1/webhooks/{id}", GATEWAY, ANY_PARTNER),
    _rule("GET", "/v1/webhooks/{id}/deliveries", GATEWAY, ANY_PARTNER),
    _rule("GET", "/v1/audit", GATEWAY, OFFICE),
)


@dataclass(frozen=True)
class Area:
    """The first path segment after ``/v1/``: who owns it and who may call paths in it
    that the table above does not list (endpoints a service adds later). Least
    privilege: a kind that may call nothing in an area may not call what is added."""

    service: str
    kinds: frozenset[PartnerKind]


AREAS: dict[str, Area] = {
    "referrals": Area("referrals", ANY_PARTNER),
    "participants": Area("casework", PROVIDER | OFFICE),
    "sessions": Area("casework", PROVIDER | OFFICE),
    "outcome-claims": Area("outcomes", PROVIDER | OFFICE),
    "payments": Area("outcomes", PROVIDER | OFFICE),
    "reports": Area("reporting", OFFICE),
    "webhooks": Area(GATEWAY, ANY_PARTNER),
    "audit": Area(GATEWAY, OFFICE),
}

_ROUTES_BY_KEY: dict[tuple[str, int, str], list[RouteRule]] = {}
for _r in ROUTES:
    _ROUTES_BY_KEY.setdefault((_r.method, len(_r.segments), _r.segments[0]), []).append(_r)


@dataclass(frozen=True)
class RouteMatch:
    service: str
    kinds: frozenset[PartnerKind]
    template: str  # what the audit log and metrics record: never the raw path
    resource_id: str | None
    cost: Cost = "call"
    listed: bool = True  # False: not in the table, allowed by its area's default


def match_partner_route(method: str, path: str) -> RouteMatch | None:
    """Route a ``/v1/...`` path, or ``None`` when no service owns it."""
    if not path.startswith("/v1/"):
        return None
    parts = path[4:].split("/")
    if any(part in (".", "..") for part in parts):
        return None  # never forward a path an HTTP client would rewrite
    area = AREAS.get(parts[0])
    if area is None:
        return None
    for rule in _ROUTES_BY_KEY.get((method, len(parts), parts[0]), ()):
        params = rule.match(parts)
        if params is not None:
            return RouteMatch(
                rule.service,
                rule.kinds,
                rule.template,
                _resource_id(params.values()),
                rule.cost,
            )
    return RouteMatch(
        area.service,
        area.kinds,
        f"/v1/{parts[0]}" if len(parts) == 1 else f"/v1/{parts[0]}/{{unlisted}}",
        None,
        listed=False,
    )


def _resource_id(values: Iterable[str]) -> str | None:
    # Only a well-formed id is recorded: whatever else a partner puts in a path could be
    # personal data (a NINO typed in the wrong place) and must not reach the audit log.
    for value in values:
        return canonical_uuid(value)
    return None


def canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def resource_id_from_location(location: str | None) -> str | None:
    """The id of a created resource, from the ``Location`` a service sets on ``201``."""
    if not location:
        return None
    path = urlsplit(location).path.rstrip("/")
    return canonical_uuid(path.rsplit("/", 1)[-1]) if path else None


def bulk_cost(body: bytes) -> int:
    """What a bulk session sync costs: its number of items (a malformed body costs 1;
    casework tells the partner what is wrong with it)."""
    try:
        sessions = orjson.loads(body).get("sessions")
    except (orjson.JSONDecodeError, AttributeError):
        return 1
    return max(1, len(sessions)) if isinstance(sessions, list) else 1


# --------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """Tokens refill at ``rate`` a second up to ``burst``.

    A call costing more than the bucket holds (a 1,000-item sync against a smaller
    burst) is let through when the bucket is full and leaves it in debt, so over time a
    partner is held to its rate in items, and no single call is refused forever.
    """

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, cost: float, now: float) -> float:
        """Spend ``cost`` tokens; returns 0 when allowed, else the seconds to wait."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        needed = min(cost, self.burst)
        if self.tokens >= needed:
            self.tokens -= cost
            return 0.0
        return (needed - self.tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))


# --------------------------------------------------------------------------------------
# Programme definitions (contract §1)
# --------------------------------------------------------------------------------------

BENEFITS = ("ESA", "JSA", "UC", "IS", "PIP", "none")
# sustained_N claims exist for these N only (contract §4), so a programme's
# sustainment_weeks must be one of them for its sustainment to be claimable at all.
SUSTAINMENT_WEEKS = (13, 26, 50)
TARIFF_KINDS = (
    "attachment",
    "job_start",
    "sustained_13",
    "sustained_26",
    "sustained_50",
    "qualification",
    "volunteering_start",
    "education_start",
)
# A ceiling far above any real tariff that keeps every amount within 32-bit columns.
MAX_TARIFF_PENCE = 100_000_000

Code = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
Pence = Annotated[int, Field(strict=True, ge=0, le=MAX_TARIFF_PENCE)]
Rate = Annotated[float, Field(strict=True, ge=0, le=1)]
StrictInt = Annotated[int, Field(strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderAreas(_Strict):
    partner_id: uuid.UUID
    local_authorities: Annotated[
        list[Annotated[Text, StringConstraints(max_length=100)]],
        Field(min_length=1, max_length=500),
    ]


class Tariff(_Strict):
    """Every amount is required (integer pence, 0 for an outcome the programme does not
    pay for), so no service ever meets an outcome without a price."""

    attachment: Pence
    job_start: Pence
    sustained_13: Pence
    sustained_26: Pence
    sustained_50: Pence
    qualification: Pence
    volunteering_start: Pence
    education_start: Pence


class Targets(_Strict):
    job_start_rate: Rate
    sustainment_rate: Rate


class ProgrammeDefinition(_Strict):
    code: Code
    name: Annotated[Text, StringConstraints(max_length=200)]
    eligible_benefits: Annotated[list[Literal[BENEFITS]], Field(min_length=1)]  # type: ignore[valid-type]
    min_age: Annotated[StrictInt, Field(ge=0, le=150)]
    max_age: Annotated[StrictInt, Field(ge=0, le=150)]
    support_weeks: Annotated[StrictInt, Field(ge=1, le=520)]
    min_job_hours: Annotated[float, Field(strict=True, ge=0, le=168)]
    sustainment_weeks: Annotated[StrictInt, Field(ge=1, le=520)]
    providers: Annotated[list[ProviderAreas], Field(min_length=1, max_length=200)]
    tariff: Tariff
    targets: Targets


def _area_key(name: str) -> str:
    # As referrals routes them: Unicode form, spacing and case aside, one authority.
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def programme_problems(definition: ProgrammeDefinition) -> list[FieldError]:
    """Rules across fields that the schema alone cannot express."""
    errors: list[FieldError] = []
    if definition.min_age > definition.max_age:
        errors.append(FieldError("min_age", "must not be greater than max_age"))
    if definition.sustainment_weeks not in SUSTAINMENT_WEEKS:
        allowed = ", ".join(str(w) for w in SUSTAINMENT_WEEKS)
        errors.append(FieldError("sustainment_weeks", f"must be one of {allowed}"))
    seen_benefits: set[str] = set()
    for i, benefit in enumerate(definition.eligible_benefits):
        if benefit in seen_benefits:
            errors.append(FieldError(f"eligible_benefits[{i}]", "is listed twice"))
        seen_benefits.add(benefit)
    seen_providers: set[uuid.UUID] = set()
    covered: dict[str, str] = {}
    for i, provider in enumerate(definition.providers):
        if provider.partner_id in seen_providers:
            errors.append(FieldError(f"providers[{i}].partner_id", "lists the same provider twice"))
        seen_providers.add(provider.partner_id)
        for j, authority in enumerate(provider.local_authorities):
            where = f"providers[{i}].local_authorities[{j}]"
            key = _area_key(authority)
            if key in covered:
                errors.append(
                    FieldError(
                        where,
                        f"'{authority}' is already covered at {covered[key]}; each local "
                        "authority maps to exactly one provider",
                    )
                )
            else:
                covered[key] = where
    return errors


def provider_problems(
    definition: ProgrammeDefinition, kinds: dict[uuid.UUID, PartnerKind]
) -> list[FieldError]:
    """``kinds``: the partners that exist among those the definition names."""
    errors = []
    for i, provider in enumerate(definition.providers):
        kind = kinds.get(provider.partner_id)
        if kind is None:
            errors.append(FieldError(f"providers[{i}].partner_id", "is not a known partner"))
        elif kind is not PartnerKind.PROVIDER:
            errors.append(
                FieldError(f"providers[{i}].partner_id", f"is a {kind.value}, not a provider")
            )
    return errors


# --------------------------------------------------------------------------------------
# Webhooks (contract §9)
# --------------------------------------------------------------------------------------

WEBHOOK_EVENTS = ("referral.status_changed",)
REFERRAL_STATUS_CHANGED = "referral.status_changed"
MAX_WEBHOOK_URL_LENGTH = 2048
_PRIVATE_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


def generate_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def webhook_url_problem(url: str, *, allow_http: bool, allow_private: bool) -> str | None:
    """Why ``url`` may not receive webhooks, or ``None`` if it may.

    Names are checked again when a delivery is made (their addresses can change); a
    literal address is settled here once.
    """
    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        return f"must be at most {MAX_WEBHOOK_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http"):
        return "must be an https:// URL"
    if parts.scheme == "http" and not allow_http:
        return "must be an https:// URL"
    host = parts.hostname
    if not host:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials; verify the signature instead"
    if parts.fragment:
        return "must not have a fragment"
    if port == 0:
        return "must not use port 0"
    if allow_private:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        lowered = host.lower().rstrip(".")
        if lowered == "localhost" or lowered.endswith(_PRIVATE_NAMES) or "." not in lowered:
            return "must be a public address"
        return None
    if not is_public_address(host):
        return "must be a public address"
    return None


def host_is_literal_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def retry_delay(attempts: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from ``base`` up to ``cap``,
    spread by ``jitter`` (a number in [0, 1)) so a recovering receiver is not hit by
    every queued delivery in the same instant."""
    exponent = min(max(attempts - 1, 0), 60)
    delay = min(cap, base * (2**exponent))
    return delay * (0.8 + 0.4 * jitter)


def retry_period_over(first_attempted_at: datetime, failed_at: datetime, *, seconds: float) -> bool:
    """Whether a delivery whose attempt at ``failed_at`` failed is given up.

    The period runs from the delivery's own first attempt, not from when it was queued:
    a referral's later change waits behind an earlier one that is being retried, and
    once its turn comes it is owed the whole period too (contract §9), however long it
    waited in line."""
    return failed_at - first_attempted_at >= timedelta(seconds=seconds)


def webhook_body(
    *,
    event_id: uuid.UUID,
    occurred_at: str,
    referral_id: uuid.UUID,
    external_ref: str,
    status: str,
) -> dict[str, str]:
    return {
        "event_id": str(event_id),
        "type": REFERRAL_STATUS_CHANGED,
        "occurred_at": occurred_at,
        "referral_id": str(referral_id),
        "external_ref": external_ref,
        "status": status,
    }
