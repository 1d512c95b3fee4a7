"""Key-worker sessions: the bulk writes behind ``POST /v1/sessions/bulk`` and the reads.

A sync of 1,000 sessions is at most four statements whatever its contents: the
participants it names, the sessions already stored under its keys (locked), one
multi-row INSERT of the new ones and one multi-row UPDATE of the changed ones. Rows
travel as one array per column (``unnest``): the cost per session is a few
microseconds, never a network round trip. (One JSON document per statement costs the
service less to send but PostgreSQL about twice as much to read; arrays win overall.)

The three bulk statements run on the asyncpg connection under the request's
SQLAlchemy transaction (same connection, same transaction): building SQLAlchemy rows
and binding per-element arrays cost the service more CPU than everything else a sync
does, and these statements are the service's hot path (measured in
``bench/sessions_sync.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
from sqlalchemy import Row, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework.domain import ParticipantScope, SessionRecord
from services.casework.store.tables import sessions

# asyncpg errors that mean "the database is out of reach", not "the statement failed".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    OSError,
)

_SCOPES_SQL = text(
    """
    SELECT id, provider_id, referred_on, left_on
    FROM participants
    WHERE id = ANY(CAST(:ids AS uuid[]))
    """
)

# Rows are locked in key order, the same order every sync takes them, so two syncs
# touching the same sessions queue behind each other instead of deadlocking.
_STORED_SQL = """
    SELECT external_id, participant_id, occurred_at, kind, duration_minutes,
           attendance, notes, modified_at
    FROM sessions
    WHERE provider_id = $1 AND external_id = ANY($2::text[])
    ORDER BY external_id
    FOR UPDATE
"""

_ROWS = """
    unnest(
        $2::text[], $3::uuid[], $4::timestamptz[], $5::text[], $6::integer[], $7::text[],
        $8::text[], $9::timestamptz[]
    ) AS t(external_id, participant_id, occurred_at, kind, duration_minutes, attendance,
           notes, modified_at)
"""

# A plain INSERT, not an upsert: the batch has already read (and locked) every key it
# sends, so these keys were free a moment ago. If another sync inserted one since, the
# unique violation is that race surfacing and the caller retries the whole batch.
# (Plain inserts also skip ON CONFLICT's speculative insertion, the costlier path.)
_INSERT_SQL = f"""
    INSERT INTO sessions (
        provider_id, external_id, participant_id, occurred_at, kind, duration_minutes,
        attendance, notes, modified_at)
    SELECT $1, t.external_id, t.participant_id, t.occurred_at, t.kind, t.duration_minutes,
           t.attendance, t.notes, t.modified_at
    FROM {_ROWS}
    ORDER BY t.external_id
"""

# Rows locked by `_STORED_SQL` in this transaction: every one is updated. The
# `external_id = ANY($2)` is what the join already implies; it is spelt out so the
# planner reaches the rows through the primary key instead of reading every session
# of the provider into a hash join (which it otherwise prefers for a generic plan).
_UPDATE_SQL = f"""
    UPDATE sessions AS s SET
        participant_id = t.participant_id,
        occurred_at = t.occurred_at,
        kind = t.kind,
        duration_minutes = t.duration_minutes,
        attendance = t.attendance,
        notes = t.notes,
        modified_at = t.modified_at,
        updated_at = now()
    FROM {_ROWS}
    WHERE s.provider_id = $1
      AND s.external_id = ANY($2::text[])
      AND s.external_id = t.external_id
"""


async def _driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    driver: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy opens its transaction at its first statement; open it now, so
        # what runs on the driver commits or rolls back with everything else.
        await session.execute(text("SELECT 1"))
    return driver


async def participant_scopes(
    session: AsyncSession, participant_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, ParticipantScope]:
    ids = list(participant_ids)
    if not ids:
        return {}
    rows = await session.execute(_SCOPES_SQL, {"ids": ids})
    return {row.id: ParticipantScope(row.provider_id, row.referred_on, row.left_on) for row in rows}


async def stored_sessions(
    session: AsyncSession, provider_id: uuid.UUID, keys: Iterable[str]
) -> dict[str, SessionRecord]:
    """The sessions stored under these keys, locked until the transaction ends."""
    key_list = sorted(set(keys))
    if not key_list:
        return {}
    driver = await _driver(session)
    rows = await driver.fetch(_STORED_SQL, provider_id, key_list)
    return {row[0]: SessionRecord(*row) for row in rows}


def _columns(writes: Mapping[str, SessionRecord]) -> list[list[Any]]:
    """One list per column, in `_ROWS` order (which is `SessionRecord`'s)."""
    return [list(column) for column in zip(*writes.values(), strict=True)]


async def write_sessions(
    session: AsyncSession,
    provider_id: uuid.UUID,
    writes: Mapping[str, SessionRecord],
    created: set[str],
) -> None:
    """Write the final state of each session: at most one INSERT and one UPDATE.

    Raises ``asyncpg.UniqueViolationError`` if a key in ``created`` was taken by
    another transaction since it was read.
    """
    inserts = {k: v for k, v in writes.items() if k in created}
    updates = {k: v for k, v in writes.items() if k not in created}
    if not (inserts or updates):
        return
    driver = await _driver(session)
    if inserts:
        await driver.execute(_INSERT_SQL, provider_id, *_columns(inserts))
    if updates:
        status = await driver.execute(_UPDATE_SQL, provider_id, *_columns(updates))
        if status != f"UPDATE {len(updates)}":
            # Impossible while the rows stay locked and sessions are never deleted.
            raise RuntimeError("sessions locked for this sync were not all updated")


async def sessions_of(session: AsyncSession, participant_id: uuid.UUID) -> list[Row[Any]]:
    """A participant's sessions as stored, oldest first."""
    rows = await session.execute(
        select(sessions)
        .where(sessions.c.participant_id == participant_id)
        .order_by(sessions.c.occurred_at, sessions.c.external_id)
    )
    return list(rows)
