"""Database access: one async engine per service process, sessions per request/event.

Each service logs in with its own role and works only in its own schema, so the
``search_path`` is pinned to that schema: a query can never wander into another
service's tables by accident (and the role has no rights there anyway).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def create_engine(url: str, *, schema: str, pool_size: int = 5) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        pool_recycle=1800,
        hide_parameters=True,  # statement parameters are personal data
        connect_args={
            "server_settings": {"search_path": schema, "application_name": schema},
            "timeout": 5,
            "command_timeout": 30,
        },
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: object, record: object, proxy: object) -> None:
    """A restarted PostgreSQL must not leave dead connections behind.

    SQLAlchemy's ``pool_pre_ping`` would ask the server on every checkout (with asyncpg,
    three round trips: BEGIN, a ping, ROLLBACK), which is most of the work of a small
    transaction. A connection the server closed is already marked closed by asyncpg,
    so asking it costs nothing; the pool then connects afresh. A connection that dies
    silently fails its next statement instead, which invalidates the pool (the caller
    answers 503, and the next checkout gets a new connection).
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


@asynccontextmanager
async def driver_transaction(
    engine: AsyncEngine, *, first: Sequence[str] = ()
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's own asyncpg driver, in a transaction, for the few hot paths
    where SQLAlchemy's per-statement cost (greenlet hops, result processing) is most of
    the work. Commits when the block ends, rolls back if it raises.

    ``first`` are plain SQL statements without parameters (e.g. advisory locks on
    integer keys) sent with the ``BEGIN`` in one round trip, each run in turn.

    Parameters go in asyncpg's way (``$1``; ``jsonb`` as JSON text, as SQLAlchemy's
    connection setup asks). The connection comes from, and goes back to, the engine's
    pool; SQLAlchemy never sees this transaction, so it is always ended here.
    """
    async with engine.connect() as conn:
        driver: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
        await driver.execute(";".join(("BEGIN", *first)))
        try:
            yield driver
        except BaseException:
            try:
                await driver.execute("ROLLBACK")
            except BaseException:
                # Its state is unknown: the pool must not hand it out again.
                await conn.invalidate()
            raise
        await driver.execute("COMMIT")


class DriverSQL:
    """One SQL text, written with ``:name`` parameters, run either through a session
    (``.text``, SQLAlchemy) or on a driver connection (``.sql`` with ``$n``, asyncpg;
    :meth:`args` puts the values in order). Casts must be written ``CAST(x AS t)``, and no
    string literal may hold ``:word``."""

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.text = text(sql)
        self.sql = _PARAMETER.sub(positional, sql)
        self.names = tuple(names)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[name] for name in self.names]


_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; the route commits what it means to keep."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.runtime.session_factory
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means "could not talk to PostgreSQL", not "the query was wrong"."""
    if isinstance(
        exc, OSError | ConnectionError | PoolTimeoutError | InterfaceError | OperationalError
    ):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # A new connection that could not be made (refused, reset mid-handshake, the server
    # full or starting up) arrives as a plain DBAPIError wrapping the driver's error.
    cause = exc.orig if isinstance(exc, DBAPIError) else None
    seen = 0
    while cause is not None and seen < 8:
        if isinstance(cause, OSError) or _unavailable_state(getattr(cause, "sqlstate", None)):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _unavailable_state(sqlstate: object) -> bool:
    # 08: connection exception; 53300: too many connections; 57P0x: shutting down/starting.
    return isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate == "53300" or sqlstate.startswith("57P0")
    )
