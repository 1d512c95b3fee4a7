"""Each service logs in with its own role and can use only its own schema."""

from __future__ import annotations

import asyncpg
import pytest

from pathways.bootstrap import SERVICES
from pathways.sandbox import Sandbox


async def _connect_as(sandbox: Sandbox, service: str) -> asyncpg.Connection:
    login = sandbox.config.login(service)
    return await asyncpg.connect(
        host="127.0.0.1",
        port=5432,
        user=login.role,
        password=login.password,
        database=sandbox.config.database,
    )


async def test_the_referrals_role_cannot_read_caseworks_tables(sandbox: Sandbox) -> None:
    conn = await _connect_as(sandbox, "referrals")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM casework.outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM casework.alembic_version")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO casework.inbox (event_id, event_type) VALUES (gen_random_uuid(), 'x')"
            )
        # ...while its own schema is its to use (written and read back, then undone).
        undo = conn.transaction()
        await undo.start()
        event_id = await conn.fetchval(
            "INSERT INTO referrals.inbox (event_id, event_type)"
            " VALUES (gen_random_uuid(), 'x') RETURNING event_id"
        )
        stored = "SELECT event_type FROM referrals.inbox WHERE event_id = $1"
        assert await conn.fetchval(stored, event_id) == "x"
        await undo.rollback()
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_no_service_can_reach_another_schema_or_create_outside_its_own(
    sandbox: Sandbox, service: str
) -> None:
    conn = await _connect_as(sandbox, service)
    try:
        for other in SERVICES:
            if other == service:
                continue
            can_use = await conn.fetchval("SELECT has_schema_privilege($1, 'USAGE')", other)
            assert can_use is False, f"{service} can use {other}'s schema"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
        assert await conn.fetchval("SHOW search_path") == service
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_each_services_migration_history_lives_in_its_own_schema(
    sandbox: Sandbox, service: str
) -> None:
    conn = await _connect_as(sandbox, service)
    try:
        version = await conn.fetchval(f"SELECT version_num FROM {service}.alembic_version")
        assert version and version.startswith(service)
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'outbox'",
            service,
        )
        assert owner == sandbox.config.login(service).role
    finally:
        await conn.close()
