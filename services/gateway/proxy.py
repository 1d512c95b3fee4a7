"""The hot path: every partner call passes through :class:`GatewayMiddleware`.

It is a plain ASGI middleware (no FastAPI routing, no per-request database work) that

1. authenticates the bearer key against the in-memory key cache (401),
2. routes the path to its owning service and checks the partner's kind (404, 403),
3. charges the partner's token bucket, by items for a bulk session sync (429),
4. forwards the call on a pooled keep-alive connection, streaming the body both ways,
   with the partner's identity in HMAC-signed headers the service verifies,
5. answers 413 / 502 / 503 / 504 problem bodies when a body is too large or a service
   is down, slow or broken (a closed port answers 503 at once, never a hang), and
6. records an audit row (buffered; written in batches).

Calls to the gateway's own partner routes (``/v1/webhooks``, ``/v1/audit``) get the
same authentication, kind check, rate limit and audit, then go to its FastAPI routes
with the partner in ``scope["pathways.partner"]``. ``/admin/*`` is audited here and
authenticated by its routes (the admin token). ``/dashboard`` is forwarded to
reporting without authentication: it is a static page whose data calls carry keys.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import domain
from services.gateway.audit import ACTOR_ADMIN, ACTOR_ANONYMOUS, ACTOR_PARTNER, AuditLog
from services.gateway.auth import KeyCache, Partner
from services.gateway.limits import RateLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.upstream import Timeouts, UpstreamError, UpstreamPool, UpstreamResponse
from shared.caller import request_target, sign
from shared.db import is_database_unavailable
from shared.errors import PROBLEM_JSON, Problem
from shared.logging import get_logger

log = get_logger(__name__)

PARTNER_SCOPE_KEY = "pathways.partner"

# Never forwarded upstream: hop-by-hop headers (RFC 9110 §7.6.1), the partner's key
# (services trust the signature, not the key), identity headers a partner might try
# to forge, and the request id (the gateway sets its own).
_DROP_REQUEST = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"authorization",
        b"content-length",
        b"x-request-id",
        # Services sit behind the gateway on loopback, where uvicorn trusts these:
        # a partner must not be able to tell them where a call came from.
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
    }
)
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        # The gateway's own server adds these; two of each would confuse clients.
        b"server",
        b"date",
        b"x-request-id",
    }
)
_INTERNAL_PREFIX = b"x-pathways-"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class ClientGone(Exception):
    """The partner disconnected before sending its whole body."""


@dataclass(frozen=True)
class _TemplateRoute:
    """Stands in for a Starlette route so request logs and metrics name the template."""

    path: str


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.auth_failures = Counter(
            "gateway_auth_failures_total",
            "Partner calls refused for a missing, unknown, revoked or expired key",
            registry=registry,
        )
        self.forbidden = Counter(
            "gateway_forbidden_total",
            "Partner calls refused because the partner's kind may not make them",
            ["kind"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Partner calls refused by the rate limit",
            ["kind"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Calls a service could not answer (down, timed out, broken)",
            ["service", "error"],
            registry=registry,
        )
        self.audit_pending = Gauge(
            "gateway_audit_pending_rows",
            "Audit rows buffered, not yet written",
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "gateway_webhook_attempts_total",
            "Webhook delivery attempts by outcome",
            ["outcome"],
            registry=registry,
        )


@dataclass
class Upstream:
    name: str
    netloc: bytes
    pool: UpstreamPool


def make_upstreams(settings: GatewaySettings) -> dict[str, Upstream]:
    timeouts = Timeouts(
        connect=settings.upstream_connect_timeout,
        read=settings.upstream_read_timeout,
        write=settings.upstream_write_timeout,
        pool=settings.upstream_pool_timeout,
    )
    upstreams = {}
    for name, url in settings.upstream_urls().items():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{name}_url must be an http(s) URL, not {url!r}")
        if parts.path not in ("", "/"):
            raise ValueError(f"{name}_url must not have a path: {url!r}")
        upstreams[name] = Upstream(
            name=name,
            netloc=parts.netloc.encode(),
            pool=UpstreamPool(
                parts.hostname,
                parts.port or (443 if parts.scheme == "https" else 80),
                timeouts=timeouts,
                max_connections=settings.upstream_max_connections,
                use_tls=parts.scheme == "https",
            ),
        )
    return upstreams


@dataclass
class GatewayState:
    """Everything the hot path needs, built once at start-up."""

    settings: GatewaySettings
    secret: str
    admin_token: bytes
    keys: KeyCache
    limiter: RateLimiter
    audit: AuditLog
    upstreams: dict[str, Upstream]
    metrics: GatewayMetrics

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.pool.aclose()


# --------------------------------------------------------------------------------------
# Small ASGI helpers
# --------------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(Problem(status, detail, title=title).body())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _stream_body(receive: Receive, limit: int) -> AsyncIterator[bytes]:
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` for the gateway's own routes, refusing bodies over ``limit``."""
    size = 0

    async def wrapped() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def _declared_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------
# The middleware
# --------------------------------------------------------------------------------------


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, state: Callable[[], GatewayState | None]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        gateway = self.state()
        if gateway is None:  # not started (lifespan not run): nothing to route with
            await self.app(scope, receive, send)
            return
        if path.startswith("/v1/"):
            await self._partner_call(gateway, scope, receive, send)
        elif path == "/dashboard" or path.startswith("/dashboard/"):
            await self._dashboard(gateway, scope, receive, send)
        elif path.startswith("/admin/") or path == "/admin":
            await self._admin_call(gateway, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # --- partner calls ---------------------------------------------------------------

    async def _partner_call(
        self, gateway: GatewayState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        match = domain.match_partner_route(method, scope["path"])
        template = match.template if match is not None else "/v1/{unknown}"
        scope["route"] = _TemplateRoute(template)
        outcome = _Outcome(send)
        partner: Partner | None = None
        try:
            partner = await gateway.keys.authenticate(
                domain.bearer_token(_decode(_header(scope, b"authorization")))
            )
            if partner is None:
                gateway.metrics.auth_failures.inc()
                await send_problem(
                    outcome.send,
                    401,
                    "A valid API key is required: Authorization: Bearer <key>.",
                    headers=[(b"www-authenticate", b'Bearer realm="pathways"')],
                )
                return
            if gateway.audit.full:
                await send_problem(
                    outcome.send,
                    503,
                    "The gateway cannot record calls right now; retry shortly.",
                    headers=[(b"retry-after", b"5")],
                )
                return
            if match is None:
                await send_problem(outcome.send, 404, "No such endpoint.")
                return
            allowed = partner.kind in match.kinds
            body: bytes | None = None
            cost = 1
            if allowed and match.cost == "sessions":
                limit = gateway.settings.max_bulk_body_bytes
                declared = _declared_length(scope)
                if declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
                body = await _read_body(receive, limit)
                cost = domain.bulk_cost(body)
            # Before the kind check: calls a partner may not make spend its allowance
            # too, so hammering a forbidden endpoint is throttled like any other.
            wait = gateway.limiter.take(partner.partner_id, partner.kind, cost)
            if wait > 0:
                gateway.metrics.rate_limited.labels(partner.kind.value).inc()
                await send_problem(
                    outcome.send,
                    429,
                    "Too many requests for this partner; slow down.",
                    headers=[(b"retry-after", domain.retry_after_header(wait).encode())],
                )
                return
            if not allowed:
                gateway.metrics.forbidden.labels(partner.kind.value).inc()
                await send_problem(outcome.send, 403, "Your partner kind may not take this action.")
                return
            if match.service == domain.GATEWAY:
                scope[PARTNER_SCOPE_KEY] = partner
                await self.app(
                    scope,
                    _limited_receive(receive, gateway.settings.max_body_bytes),
                    outcome.send,
                )
                if not match.listed:
                    template = getattr(scope.get("route"), "path", template)
            else:
                await _forward(
                    gateway,
                    match.service,
                    scope,
                    receive,
                    outcome.send,
                    partner=partner,
                    body=body,
                    limit=gateway.settings.max_body_bytes,
                )
        except BodyTooLarge as exc:
            if not outcome.started:
                await send_problem(outcome.send, 413, str(exc.detail))
        except ClientGone:
            outcome.status = 499  # nginx's word for it: nobody left to answer
        except Exception as exc:
            if _is_database_down(exc) and not outcome.started:
                log.warning("gateway database unavailable", error=type(exc).__name__)
                await send_problem(
                    outcome.send,
                    503,
                    "The gateway's database is unavailable; retry shortly.",
                    headers=[(b"retry-after", b"2")],
                )
            else:
                raise
        finally:
            gateway.audit.record(
                actor=ACTOR_PARTNER if partner is not None else ACTOR_ANONYMOUS,
                partner_id=partner.partner_id if partner is not None else None,
                key_id=partner.key_id if partner is not None else None,
                method=method,
                route=template,
                resource_id=_resource_id(match, outcome),
                status=outcome.status,
                request_id=_request_id(),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )

    # --- admin and dashboard -------------------------------------------------------

    async def _admin_call(
        self, gateway: GatewayState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        outcome = _Outcome(send)
        token = domain.bearer_token(_decode(_header(scope, b"authorization")))
        # Checked before any body is read, so a caller without the token learns nothing
        # (the routes check again). compare_digest: no early exit to time the token by.
        is_admin = token is not None and hmac.compare_digest(token.encode(), gateway.admin_token)
        try:
            if not is_admin:
                scope["route"] = _TemplateRoute("/admin/{unknown}")
                await send_problem(
                    outcome.send,
                    401,
                    "The admin token is required: Authorization: Bearer <admin token>.",
                    headers=[(b"www-authenticate", b'Bearer realm="pathways"')],
                )
                return
            await self.app(
                scope, _limited_receive(receive, gateway.settings.max_body_bytes), outcome.send
            )
        finally:
            route = getattr(scope.get("route"), "path", None) or "/admin/{unknown}"
            params = scope.get("path_params") or {}
            resource = domain.resource_id_from_location(outcome.location) or next(
                (
                    canonical
                    for value in params.values()
                    if (canonical := domain.canonical_uuid(str(value)))
                ),
                None,
            )
            gateway.audit.record(
                actor=ACTOR_ADMIN if is_admin else ACTOR_ANONYMOUS,
                method=scope["method"],
                route=route,
                resource_id=resource,
                status=outcome.status,
                request_id=_request_id(),
                duration_ms=int((time.perf_counter() - started) * 1000),
            )

    async def _dashboard(
        self, gateway: GatewayState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = _TemplateRoute("/dashboard")
        try:
            await _forward(
                gateway,
                "reporting",
                scope,
                receive,
                send,
                partner=None,
                body=None,
                limit=gateway.settings.max_body_bytes,
            )
        except BodyTooLarge as exc:
            await send_problem(send, 413, str(exc.detail))
        except ClientGone:
            return


class _Outcome:
    """Wraps ``send`` to learn the status and any ``Location`` of the response."""

    __slots__ = ("_send", "location", "started", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500
        self.started = False
        self.location: str | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            if self.status == 201:
                for key, value in message.get("headers", ()):
                    if key.lower() == b"location":
                        self.location = value.decode("latin-1")
                        break
        await self._send(message)


def _resource_id(match: domain.RouteMatch | None, outcome: _Outcome) -> str | None:
    created = domain.resource_id_from_location(outcome.location)
    if created is not None:
        return created
    return match.resource_id if match is not None else None


def _decode(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _is_database_down(exc: BaseException) -> bool:
    return is_database_unavailable(exc)


# --------------------------------------------------------------------------------------
# Forwarding
# --------------------------------------------------------------------------------------

_STATUS_FOR = {"unavailable": 503, "timeout": 504, "broken": 502}
_STREAM_ABOVE = 64 * 1024


async def _forward(
    gateway: GatewayState,
    service: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    partner: Partner | None,
    body: bytes | None,
    limit: int,
) -> None:
    upstream = gateway.upstreams[service]
    method: str = scope["method"]
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    # The service signs and routes on the path it decodes from these very bytes,
    # exactly as this gateway did; nothing re-encodes them on the way.
    if unquote(raw_path.decode("latin-1")) != scope["path"]:
        await send_problem(send, 404, "No such endpoint.")
        return
    target = raw_path + b"?" + query if query else raw_path

    headers: list[tuple[bytes, bytes]] = []
    hop_by_hop = _DROP_REQUEST
    for key, value in scope["headers"]:
        if key == b"connection":
            hop_by_hop = hop_by_hop | {t.strip().lower() for t in value.split(b",")}
    has_host = False
    for key, value in scope["headers"]:
        if key in hop_by_hop or key.startswith(_INTERNAL_PREFIX):
            continue
        if key == b"host":
            has_host = True
        headers.append((key, value))
    if not has_host:
        headers.append((b"host", upstream.netloc))
    request_id = _request_id()
    if request_id:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    if partner is not None:
        signed = sign(
            gateway.secret,
            partner_id=partner.partner_id,
            kind=partner.kind.value,
            method=method,
            target=request_target(scope["path"], query),
        )
        headers.extend((k.encode(), v.encode()) for k, v in signed.items())

    content: bytes | AsyncIterator[bytes]
    chunked = False
    if body is not None:
        content = body
        headers.append((b"content-length", str(len(body)).encode()))
    else:
        declared = _declared_length(scope)
        if declared is not None:
            if declared > limit:
                raise BodyTooLarge(limit)
            headers.append((b"content-length", str(declared).encode()))
            if declared > _STREAM_ABOVE:
                content = _stream_body(receive, limit)
            else:
                # A small body (a referral, a claim) goes out with the head in one
                # write; only large ones are streamed.
                content = await _read_body(receive, limit) if declared else b""
        elif _header(scope, b"transfer-encoding") is not None:
            headers.append((b"transfer-encoding", b"chunked"))
            content = _stream_body(receive, limit)
            chunked = True
        else:
            content = b""

    try:
        response = await upstream.pool.request(
            method.encode(), target, headers, content, chunked=chunked
        )
    except UpstreamError as exc:
        gateway.metrics.upstream_errors.labels(service, exc.kind).inc()
        log.warning("service call failed", service=service, error=exc.kind, detail=exc.detail)
        status = _STATUS_FOR[exc.kind]
        if status == 503:
            await send_problem(
                send,
                503,
                f"The {service} service is unavailable; retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
        elif status == 504:
            await send_problem(send, 504, f"The {service} service did not answer in time.")
        else:
            await send_problem(send, 502, f"The {service} service failed to answer.")
        return
    try:
        await _relay_response(gateway, service, response, send)
    finally:
        await response.aclose()


async def _relay_response(
    gateway: GatewayState, service: str, response: UpstreamResponse, send: Send
) -> None:
    status = response.status
    headers: list[tuple[bytes, bytes]] = []
    content_type = b""
    for key, value in response.headers:
        if key in _DROP_RESPONSE:
            continue
        if key == b"content-type":
            content_type = value
        headers.append((key, value))
    if status >= 500 and not content_type.startswith(PROBLEM_JSON.encode()):
        # Every error partners see is a problem body (§7), even a service's crash.
        gateway.metrics.upstream_errors.labels(service, "error").inc()
        await send_problem(send, 502, f"The {service} service failed to answer.")
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    try:
        async for chunk in response.body():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except UpstreamError as exc:
        # Too late for a problem body: the status line is gone. Cut the connection
        # so the partner sees a truncated response, not a complete-looking one.
        gateway.metrics.upstream_errors.labels(service, "truncated").inc()
        log.warning("service response cut off", service=service, error=exc.kind)
        raise
    await send({"type": "http.response.body", "body": b"", "more_body": False})
