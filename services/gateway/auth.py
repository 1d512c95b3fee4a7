"""Who is calling: API keys checked against an in-memory cache kept honest by PostgreSQL.

A key is looked up by its public prefix, then its SHA-256 is compared in constant time
with the stored digest. Lookups are cached per process so the hot path never waits on
the database. Revocation reaches every replica at once: revoking (or issuing, rotating)
a key sends ``NOTIFY gateway_keys, '<prefix>'`` in the same transaction, and each
replica's listener drops that prefix from its cache the moment the change commits. The
replica that made the change drops it before answering the admin. Should the listener
lose its connection, the cache is cleared when it reconnects, and every entry also
expires after ``key_cache_ttl_seconds`` as a last resort.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway import domain, store
from shared.caller import Caller, PartnerKind
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Partner:
    """An authenticated partner, as the gateway passes it on."""

    partner_id: uuid.UUID
    kind: PartnerKind
    key_id: uuid.UUID

    @property
    def caller(self) -> Caller:
        return Caller(self.partner_id, self.kind)


@dataclass
class _Entry:
    record: store.KeyRecord | None  # None: no key has this prefix
    fetched: float


class _LoadAbandoned(Exception):
    """The request loading a key went away; whoever was waiting on it loads it anew."""


class KeyCache:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Future[store.KeyRecord | None]] = {}
        # Prefixes announced as changed while being read: what was read may be stale.
        self._stale_during_load: set[str] = set()
        self.listening = asyncio.Event()

    async def authenticate(self, token: str | None) -> Partner | None:
        """The partner a bearer token belongs to, or ``None`` (unknown, revoked, expired)."""
        if token is None:
            return None
        prefix = domain.key_prefix(token)
        if prefix is None:
            return None
        record = await self._record(prefix)
        if record is None or record.revoked:
            return None
        if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
            return None
        if not domain.key_matches(token, record.digest):
            return None
        return Partner(record.partner_id, record.kind, record.key_id)

    async def _record(self, prefix: str) -> store.KeyRecord | None:
        now = time.monotonic()
        entry = self._entries.get(prefix)
        if entry is not None:
            ttl = self.ttl if entry.record is not None else self.negative_ttl
            if now - entry.fetched < ttl:
                return entry.record
        # One query per prefix however many requests are waiting for it.
        while (pending := self._loading.get(prefix)) is not None:
            with contextlib.suppress(_LoadAbandoned):
                return await asyncio.shield(pending)
        future: asyncio.Future[store.KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._loading[prefix] = future
        try:
            async with self.engine.connect() as conn:
                record = await store.key_by_prefix(conn, prefix)
        except asyncio.CancelledError:
            future.set_exception(_LoadAbandoned())
            future.exception()  # marked retrieved: waiters load it themselves
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._loading.pop(prefix, None)
        if prefix in self._stale_during_load:
            self._stale_during_load.discard(prefix)
        else:
            self._remember(prefix, record, now)
        future.set_result(record)
        return record

    def _remember(self, prefix: str, record: store.KeyRecord | None, now: float) -> None:
        if len(self._entries) >= self.max_entries:
            # Rare (only a flood of made-up prefixes gets here): start afresh.
            self._entries.clear()
        self._entries[prefix] = _Entry(record, now)

    def forget(self, prefix: str) -> None:
        self._entries.pop(prefix, None)
        if prefix in self._loading:
            self._stale_during_load.add(prefix)

    def clear(self) -> None:
        self._entries.clear()
        self._stale_during_load.update(self._loading)

    async def listen(self, dsn: str) -> None:
        """Forget keys as PostgreSQL announces changes to them; runs until cancelled."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                await conn.add_listener(
                    store.KEYS_CHANNEL, lambda _c, _pid, _ch, prefix: self.forget(prefix)
                )
                # Whatever changed while nobody was listening is unknown: drop it all.
                self.clear()
                self.listening.set()
                while not conn.is_closed():
                    await asyncio.sleep(2)
                    await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("key listener reconnecting", error=type(exc).__name__)
                await asyncio.sleep(1)
            finally:
                self.listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
