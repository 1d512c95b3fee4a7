"""The hot paths' own transactions on the asyncpg driver, against the real PostgreSQL:
they commit or leave nothing, and a connection in an unknown state is never reused."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from pathways.sandbox import Sandbox
from shared.db import DriverSQL, create_engine, driver_transaction

INSERT = DriverSQL(
    "INSERT INTO {table} (name, amount) "
    "SELECT :name, CAST(:amount AS integer) WHERE CAST(:amount AS integer) > 0 "
    "RETURNING amount::text"
)


@pytest_asyncio.fixture
async def ledger(sandbox: Sandbox) -> AsyncIterator[tuple[AsyncEngine, str]]:
    table = f"ledger_{secrets.token_hex(4)}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{sandbox.config.database}"
    engine = create_engine(url, schema="public", pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (name text PRIMARY KEY, amount integer)"))
    try:
        yield engine, table
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
        await engine.dispose()


async def _names(engine: AsyncEngine, table: str) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(f"SELECT name FROM {table} ORDER BY name"))).scalars())


def test_named_parameters_become_positional_in_first_use_order() -> None:
    assert INSERT.names == ("name", "amount")
    assert "$1, CAST($2 AS integer) WHERE CAST($2 AS integer)" in INSERT.sql
    assert "amount::text" in INSERT.sql  # a :: cast is not a parameter
    assert INSERT.args({"amount": 3, "name": "a", "unused": 1}) == ["a", 3]
    with pytest.raises(KeyError):
        INSERT.args({"name": "a"})


async def test_a_driver_transaction_commits_what_it_wrote(ledger) -> None:
    engine, table = ledger
    sql = INSERT.sql.format(table=table)
    async with driver_transaction(engine, first=["SELECT pg_advisory_xact_lock(42)"]) as driver:
        assert await driver.fetchval(sql, *INSERT.args({"name": "a", "amount": 3})) == "3"
        locks = await driver.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42"
            " AND pid = pg_backend_pid()"
        )
        assert locks == 1  # the `first` statements ran inside the transaction
    assert await _names(engine, table) == ["a"]


async def test_a_driver_transaction_that_raises_leaves_nothing(ledger) -> None:
    engine, table = ledger
    sql = INSERT.sql.format(table=table)
    with pytest.raises(RuntimeError, match="after the insert"):
        async with driver_transaction(engine) as driver:
            await driver.execute(sql, *INSERT.args({"name": "b", "amount": 5}))
            raise RuntimeError("after the insert")
    assert await _names(engine, table) == []
    # The pool's one connection came back usable, outside any transaction.
    async with driver_transaction(engine) as driver:
        await driver.execute(sql, *INSERT.args({"name": "c", "amount": 1}))
    assert await _names(engine, table) == ["c"]


async def test_a_connection_whose_rollback_fails_is_not_handed_out_again(ledger) -> None:
    engine, table = ledger
    with pytest.raises(RuntimeError, match="mid-transaction"):
        async with driver_transaction(engine) as driver:
            pid = await driver.fetchval("SELECT pg_backend_pid()")
            await driver.close()  # the server connection is gone: ROLLBACK cannot be sent
            raise RuntimeError("mid-transaction")
    async with driver_transaction(engine) as driver:
        assert await driver.fetchval("SELECT pg_backend_pid()") != pid
    assert await _names(engine, table) == []
