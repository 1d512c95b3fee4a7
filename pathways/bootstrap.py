"""Create the database, one login role and one schema per service, and migrate.

Everything here is idempotent: running it again changes nothing but passwords (set
to what the configuration says). It needs a superuser connection once; the services
themselves never get one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from shared import migrations

SERVICES: tuple[str, ...] = ("gateway", "referrals", "casework", "outcomes", "reporting")


@dataclass(frozen=True)
class ServiceLogin:
    service: str
    role: str
    password: str

    @property
    def schema(self) -> str:
        return self.service


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe identifier: {name!r}")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def create_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f"CREATE DATABASE {_ident(database)}")
    finally:
        await conn.close()


async def create_roles_and_schemas(
    admin_dsn: str, database: str, logins: Iterable[ServiceLogin]
) -> None:
    conn = await asyncpg.connect(admin_dsn, database=database, timeout=10)
    try:
        db = _ident(database)
        # Nobody connects or creates objects unless granted below.
        await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for login in logins:
            role, schema = _ident(login.role), _ident(login.schema)
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login.role)
            verb = "ALTER" if exists else "CREATE"
            await conn.execute(
                f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                f"PASSWORD {_literal(login.password)}"
            )
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
            await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"ALTER ROLE {role} IN DATABASE {db} SET search_path = {schema}")
    finally:
        await conn.close()


async def drop_environment(admin_dsn: str, database: str, roles: Iterable[str]) -> None:
    """Remove a database and its roles (test runs clean up after themselves)."""
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)")
        for role in roles:
            await conn.execute(f"DROP ROLE IF EXISTS {_ident(role)}")
    finally:
        await conn.close()


def service_database_url(login: ServiceLogin, *, host: str, port: int, database: str) -> str:
    from urllib.parse import quote

    return (
        f"postgresql+asyncpg://{quote(login.role)}:{quote(login.password)}@{host}:{port}/{database}"
    )


async def bootstrap(
    admin_dsn: str, database: str, logins: list[ServiceLogin], *, host: str, port: int
) -> None:
    await create_database(admin_dsn, database)
    await create_roles_and_schemas(admin_dsn, database, logins)
    # Alembic's env runs its own event loop; keep it off ours.
    for login in logins:
        url = service_database_url(login, host=host, port=port, database=database)
        await asyncio.to_thread(migrations.upgrade, login.service, url)
