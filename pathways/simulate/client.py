"""Calling the gateway as the programme's partners do: API keys, a bounded number of
calls in flight, ``429`` honoured by waiting ``Retry-After`` (per partner, so one
partner's limit does not hold up the others), and retries only where a retry is safe.

A call that was refused before anything happened (``429``, a refused connection) is
always sent again. A call that may have been applied (a timeout, a ``502``-``504``)
is sent again only if it is idempotent (the contract makes referrals, attachments and
session syncs safe to repeat); otherwise the failure is reported, never guessed at.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Credentials:
    """Who a call is made as: a partner (by its story handle) or the admin."""

    handle: str
    kind: str
    token: str
    partner_id: str | None = None


class ApiError(Exception):
    """A call answered with a status the story did not expect."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        super().__init__(f"{method} {route_of(path)} -> {status}: {describe(body)}")


def route_of(path: str) -> str:
    """A path with its ids replaced, for counting and messages (ids are not personal
    data, but a route reads better and groups calls)."""
    return _ID.sub("{id}", path.split("?", 1)[0])


def describe(body: Any) -> str:
    """A problem body's title, detail and field names; never a request's content."""
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("title") or ""), str(body.get("detail") or "")]
    fields = [str(e.get("field")) for e in body.get("errors") or [] if isinstance(e, dict)]
    if fields:
        parts.append("fields: " + ", ".join(fields))
    return "; ".join(p for p in parts if p)[:300]


@dataclass
class CallStats:
    calls: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def by_status(self) -> Counter[int]:
        out: Counter[int] = Counter()
        for (_, _, status), n in self.calls.items():
            out[status] += n
        return out


class Gateway:
    """One connection pool for every partner; each call names who makes it."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = 24,
        timeout: float = 90.0,
        max_rate_limit_waits: int = 200,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(
                max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8
            ),
        )
        self.slots = asyncio.Semaphore(concurrency)
        self.max_rate_limit_waits = max_rate_limit_waits
        self.stats = CallStats()
        self._paused_until: dict[str, float] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def health(self) -> bool:
        try:
            response = await self.http.get("/health", timeout=3)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _wait_if_paused(self, who: Credentials) -> None:
        while True:
            delay = self._paused_until.get(who.token, 0.0) - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    async def call(
        self,
        who: Credentials,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
        idempotent: bool = False,
    ) -> Any:
        """Make the call; return the decoded body if the status is one of ``expect``,
        raise :class:`ApiError` otherwise."""
        response = await self.send(
            who, method, path, json=json, params=params, idempotent=idempotent
        )
        body = decode(response)
        if response.status_code not in expect:
            raise ApiError(method, path, response.status_code, body)
        return body

    async def send(
        self,
        who: Credentials,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {who.token}", "Accept": "application/json"}
        content = None
        if json is not None:
            content = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        rate_limit_waits = 0
        failures = 0
        while True:
            await self._wait_if_paused(who)
            started = time.monotonic()
            try:
                async with self.slots:
                    response = await self.http.request(
                        method, path, content=content, params=params, headers=headers
                    )
            except httpx.TransportError as exc:
                # A refused connection never reached the gateway: always safe to resend.
                safe = idempotent or isinstance(exc, httpx.ConnectError)
                failures += 1
                if not safe or failures > 6:
                    raise
                self.stats.retries += 1
                await asyncio.sleep(min(8.0, 0.25 * 2**failures))
                continue
            finally:
                self.stats.seconds += time.monotonic() - started
            status = response.status_code
            self.stats.calls[(method, route_of(path), status)] += 1
            if status == 429 and rate_limit_waits < self.max_rate_limit_waits:
                rate_limit_waits += 1
                self.stats.rate_limited += 1
                wait = _retry_after(response)
                until = time.monotonic() + wait
                self._paused_until[who.token] = max(self._paused_until.get(who.token, 0), until)
                continue
            if status in (502, 503, 504) and failures < 6 and (idempotent or status == 503):
                # 503 from the gateway means the service could not be reached (or the
                # audit log is full): nothing was applied. 502/504 might have been.
                failures += 1
                self.stats.retries += 1
                await asyncio.sleep(max(_retry_after(response, default=0.0), 0.25 * 2**failures))
                continue
            return response


def _retry_after(response: httpx.Response, default: float = 1.0) -> float:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:500]
