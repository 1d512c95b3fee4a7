"""Database access: one async engine per service process, sessions per request/event.

Each service logs in with its own role and works only in its own schema, so the
``search_path`` is pinned to that schema: a query can never wander into another
service's tables by accident (and the role has no rights there anyway).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
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
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # a restarted PostgreSQL must not leave dead connections behind
        pool_timeout=5,
        pool_recycle=1800,
        hide_parameters=True,  # statement parameters are personal data
        connect_args={
            "server_settings": {"search_path": schema, "application_name": schema},
            "timeout": 5,
            "command_timeout": 30,
        },
    )


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
