"""Webhook delivery (contract §9): durable, signed, retried, in order per referral.

Every delivery is a row in ``gateway.webhook_deliveries``, written in the same
transaction that consumed the referral event, so a queued delivery survives any
restart. The dispatcher (a background loop in every gateway replica):

* claims due deliveries with ``FOR UPDATE SKIP LOCKED`` and a lease, so replicas never
  send the same one at once and a replica that dies mid-send only delays it;
* claims only the *head* of each (subscription, referral) queue: a later delivery for a
  referral waits while an earlier one is pending or being retried, so one referral's
  changes arrive in the order they happened;
* signs each attempt per the Standard Webhooks spec (``webhook-id`` = the event id,
  stable across retries; ``webhook-timestamp``; ``webhook-signature`` v1 HMAC-SHA256);
* treats any 2xx as delivered, anything else (or a timeout) as a failure to retry with
  exponential backoff and jitter, until ``webhook_retry_for_seconds`` (≥ 24 h) have
  passed since the delivery's own first attempt (not since it was queued: a delivery
  held behind an earlier one of its referral is owed the whole period once its turn
  comes); then it is ``failed``, the partner can list it, and the referral's later
  deliveries go ahead.

Redirects are not followed, and unless allowed by setting, a target whose name resolves
to a private, loopback or link-local address is refused at each attempt (SSRF).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from services.gateway import domain, store
from services.gateway.settings import GatewaySettings
from shared.logging import get_logger

log = get_logger(__name__)

S = store.SCHEMA

_CLAIM_SQL = text(f"""
    WITH due AS (
        SELECT d.id
        FROM {S}.webhook_deliveries d
        WHERE d.status IN ('{store.PENDING}', '{store.RETRYING}')
          AND d.next_attempt_at <= now()
          AND (d.leased_until IS NULL OR d.leased_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM {S}.webhook_deliveries e
              WHERE e.subscription_id = d.subscription_id
                AND e.referral_id = d.referral_id
                AND e.status IN ('{store.PENDING}', '{store.RETRYING}')
                AND (e.occurred_at, e.sequence, e.id) < (d.occurred_at, d.sequence, d.id)
          )
        ORDER BY d.next_attempt_at, d.id
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE {S}.webhook_deliveries w
    SET leased_until = now() + make_interval(secs => :lease)
    FROM due, {S}.webhook_subscriptions s
    WHERE w.id = due.id AND s.id = w.subscription_id
    RETURNING w.id, w.event_id, w.payload, w.attempts, w.first_attempted_at, s.url, s.secret
""")

_DELIVERED_SQL = text(f"""
    UPDATE {S}.webhook_deliveries
    SET status = '{store.DELIVERED}', attempts = attempts + 1,
        first_attempted_at = COALESCE(first_attempted_at, :at), last_attempt_at = :at,
        delivered_at = :at, last_status_code = :code, last_error = NULL, leased_until = NULL
    WHERE id = :id AND status IN ('{store.PENDING}', '{store.RETRYING}')
""")

_FAILED_SQL = text(f"""
    UPDATE {S}.webhook_deliveries
    SET status = :status, attempts = attempts + 1,
        first_attempted_at = COALESCE(first_attempted_at, :at), last_attempt_at = :at,
        last_status_code = :code, last_error = :error, next_attempt_at = :next_at,
        leased_until = NULL
    WHERE id = :id AND status IN ('{store.PENDING}', '{store.RETRYING}')
""")

_RELEASE_SQL = text(f"""
    UPDATE {S}.webhook_deliveries SET leased_until = NULL
    WHERE id = ANY(:ids) AND status IN ('{store.PENDING}', '{store.RETRYING}')
""")

_PRUNE_SQL = text(f"""
    DELETE FROM {S}.webhook_deliveries
    WHERE status IN ('{store.DELIVERED}', '{store.CANCELLED}')
      AND created_at < now() - make_interval(days => :days)
""")


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: Any
    payload: dict[str, Any]
    attempts: int
    # None until an attempt has been recorded (then the retry period starts).
    first_attempted_at: datetime | None
    url: str
    secret: str


@dataclass(frozen=True)
class _Result:
    delivery: _Claimed
    ok: bool
    status_code: int | None
    error: str | None
    at: datetime


def sign_headers(secret: str, msg_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt."""
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


class WebhookDispatcher:
    def __init__(self, engine: AsyncEngine, settings: GatewaySettings, metrics: Any) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_seconds),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment sees partners' payloads
            limits=httpx.Limits(
                max_connections=settings.webhook_concurrency * 2,
                max_keepalive_connections=settings.webhook_concurrency,
            ),
            headers={"user-agent": "Pathways-Webhooks/1", "content-type": "application/json"},
        )
        self.wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._last_prune = 0.0

    @property
    def capacity(self) -> int:
        return self.settings.webhook_concurrency - len(self._in_flight)

    async def run(self) -> None:
        """Keep up to ``webhook_concurrency`` deliveries in flight, each on its own, so
        one slow receiver never holds up another partner's deliveries."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                # Cleared before looking, not after: a delivery that finishes while this
                # claim runs then starts the next look at once, instead of its wake-up
                # being wiped and its referral's next delivery waiting for the poll.
                self.wake.clear()
                claimed: list[_Claimed] = []
                try:
                    if self.capacity > 0:
                        claimed = await self.claim(
                            min(self.capacity, self.settings.webhook_batch_size)
                        )
                        for delivery in claimed:
                            self._start(delivery)
                    if loop.time() - self._last_prune > 600:
                        await self._prune()
                        self._last_prune = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("webhook dispatch stalled; retrying", error=type(exc).__name__)
                    await asyncio.sleep(1)
                    continue
                if claimed and self.capacity > 0:
                    continue  # more may be due right now
                # Sleep until a delivery finishes (the next in its referral's queue may
                # be due) or the poll interval passes.
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                # cancel that lands as a delivery finishes, and shutdown would hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.webhook_poll_seconds):
                        await self.wake.wait()
        finally:
            await self._abandon_in_flight()
            await self.client.aclose()

    async def claim(self, limit: int) -> list[_Claimed]:
        """Lease up to ``limit`` due deliveries, each the head of its referral's queue."""
        lease = self.settings.webhook_timeout_seconds + 30
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_CLAIM_SQL, {"limit": limit, "lease": lease})).all()
        return [
            _Claimed(
                r.id,
                r.event_id,
                orjson.loads(r.payload) if isinstance(r.payload, str | bytes) else r.payload,
                r.attempts,
                r.first_attempted_at,
                r.url,
                r.secret,
            )
            for r in rows
        ]

    def _start(self, delivery: _Claimed) -> None:
        task = asyncio.create_task(self._deliver(delivery), name=f"webhook-{delivery.id}")
        self._in_flight[delivery.id] = task

        def done(_t: asyncio.Task[None]) -> None:
            self._in_flight.pop(delivery.id, None)
            self.wake.set()

        task.add_done_callback(done)

    async def _deliver(self, delivery: _Claimed) -> None:
        try:
            result = await self._attempt(delivery)
        except Exception as exc:  # a bug here must not leave the delivery leased forever
            log.exception("webhook attempt crashed", delivery_id=delivery.id, exc_info=exc)
            error = f"internal error ({type(exc).__name__})"
            result = _Result(delivery, False, None, error, datetime.now(UTC))
        try:
            await self._record([result])
        except Exception as exc:
            # Its lease runs out and it is sent again: at least once, never lost.
            log.warning(
                "webhook result not recorded", delivery_id=delivery.id, error=type(exc).__name__
            )

    async def _abandon_in_flight(self) -> None:
        """On shutdown: stop sending, and let another replica (or the next start) have
        the unfinished deliveries at once instead of after their lease."""
        tasks = list(self._in_flight.values())
        ids = list(self._in_flight)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if ids:
            with contextlib.suppress(Exception):
                async with self.engine.begin() as conn:
                    await conn.execute(_RELEASE_SQL, {"ids": ids})

    async def _attempt(self, delivery: _Claimed) -> _Result:
        body = orjson.dumps(delivery.payload)
        now = datetime.now(UTC)
        headers = sign_headers(delivery.secret, str(delivery.event_id), body, now)
        timeout = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(timeout * 2 + 1):  # name lookup plus the request
                problem = await self._target_problem(delivery.url)
                if problem is not None:
                    return _Result(delivery, False, None, problem, now)
                response = await self.client.post(delivery.url, content=body, headers=headers)
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return _Result(delivery, False, None, "timed out", now)
        except (httpx.HTTPError, OSError) as exc:
            error = f"could not connect ({type(exc).__name__})"
            return _Result(delivery, False, None, error, now)
        ok = 200 <= response.status_code < 300
        error = None if ok else f"answered HTTP {response.status_code}"
        return _Result(delivery, ok, response.status_code, error, now)

    async def _target_problem(self, url: str) -> str | None:
        """A name may resolve anywhere by now: refuse private targets at each attempt."""
        if self.settings.webhook_allow_private_targets:
            return None
        parts = urlsplit(url)
        host = parts.hostname or ""
        if domain.host_is_literal_address(host):
            return None  # settled when the subscription was made
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos or not all(domain.is_public_address(info[4][0]) for info in infos):
            return "target resolves to a private address"
        return None

    async def _record(self, results: list[_Result]) -> None:
        delivered: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for result in results:
            if result.ok:
                delivered.append(
                    {"id": result.delivery.id, "at": result.at, "code": result.status_code}
                )
                self.metrics.webhook_attempts.labels("delivered").inc()
                continue
            attempts = result.delivery.attempts + 1
            give_up = domain.retry_period_over(
                result.delivery.first_attempted_at or result.at,  # None: this was the first
                result.at,
                seconds=self.settings.webhook_retry_for_seconds,
            )
            delay = domain.retry_delay(
                attempts,
                base=self.settings.webhook_retry_base_seconds,
                cap=self.settings.webhook_retry_max_delay_seconds,
                jitter=random.random(),
            )
            failed.append(
                {
                    "id": result.delivery.id,
                    "status": store.FAILED if give_up else store.RETRYING,
                    "at": result.at,
                    "code": result.status_code,
                    "error": result.error,
                    "next_at": result.at + timedelta(seconds=delay),
                }
            )
            self.metrics.webhook_attempts.labels("gave_up" if give_up else "failed").inc()
            log.info(
                "webhook attempt failed",
                delivery_id=result.delivery.id,
                attempt=attempts,
                gave_up=give_up,
                error=result.error,
            )
        async with self.engine.begin() as conn:
            if delivered:
                await conn.execute(_DELIVERED_SQL, delivered)
            if failed:
                await conn.execute(_FAILED_SQL, failed)

    async def _prune(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_PRUNE_SQL, {"days": self.settings.webhook_delivered_retention_days})
