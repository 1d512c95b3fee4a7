"""The audit log: who called what, when, with what result, for every call.

Rows are buffered in memory and written in batches every ``audit_flush_seconds`` (and
on shutdown), so auditing never adds a database round trip to a partner's call. What
is recorded: the partner and key, the method, the route *template* (never the raw path
or query string), the id of the resource acted on, the status, the request id and the
duration. Never a body.

If PostgreSQL is unreachable the buffer grows; once it holds ``audit_buffer_max`` rows
the gateway refuses partner calls with 503 rather than serve calls it cannot audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway import store
from shared.logging import get_logger

log = get_logger(__name__)

ACTOR_PARTNER = "partner"
ACTOR_ADMIN = "admin"
ACTOR_ANONYMOUS = "anonymous"


class AuditLog:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        flush_seconds: float,
        batch_size: int,
        buffer_max: int,
        pending_gauge: Any | None = None,
    ) -> None:
        self.engine = engine
        self.pending_gauge = pending_gauge
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.buffer_max = buffer_max
        self._buffer: list[tuple[Any, ...]] = []
        self._flush_lock = asyncio.Lock()

    @property
    def full(self) -> bool:
        return len(self._buffer) >= self.buffer_max

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(
        self,
        *,
        actor: str,
        method: str,
        route: str,
        status: int,
        duration_ms: int,
        partner_id: uuid.UUID | None = None,
        key_id: uuid.UUID | None = None,
        resource_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        # In store.AUDIT_COLUMNS order: the rows go to PostgreSQL as they are.
        self._buffer.append(
            (
                datetime.now(UTC),
                actor,
                partner_id,
                key_id,
                method,
                route,
                resource_id,
                status,
                request_id,
                duration_ms,
            )
        )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "audit flush failed; rows kept for the next attempt",
                    error=type(exc).__name__,
                    pending=len(self._buffer),
                )
                await asyncio.sleep(1)
            finally:
                if self.pending_gauge is not None:
                    self.pending_gauge.set(len(self._buffer))

    async def flush(self) -> int:
        """Write everything buffered; returns how many rows were written."""
        written = 0
        async with self._flush_lock:
            while self._buffer:
                batch = self._buffer[: self.batch_size]
                del self._buffer[: len(batch)]
                try:
                    async with self.engine.connect() as conn:
                        await store.copy_audit_rows(conn, batch)
                except BaseException:
                    # Not written: back to the front, in order, for the next attempt.
                    self._buffer[:0] = batch
                    raise
                written += len(batch)
        return written

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            written = await self.flush()
            if written:
                log.info("audit rows flushed at shutdown", rows=written)
        if self._buffer:
            log.error("audit rows could not be written at shutdown", rows=len(self._buffer))
