"""`pathways migrate`, the one-shot job of docker-compose and Kubernetes, against the real
PostgreSQL: a brand-new database of its own per test module (named like the sandboxes,
so a killed run's leftovers are swept), created from nothing as in a first install."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from pathways import bootstrap as db_bootstrap
from pathways.bootstrap import SERVICES
from pathways.migrate_job import (
    MigrateSettings,
    MigrationError,
    SchemaState,
    admin_connection,
    field_env_names,
    read_service_databases,
    run_migrations,
    schema_state,
    settings_class,
    wait_until_migrated,
)
from pathways.sandbox import PREFIX
from shared.settings import PlatformSettings

REPO = Path(__file__).resolve().parents[2]
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Fresh:
    """A database and five roles that do not exist yet."""

    database: str
    passwords: dict[str, str]

    def role(self, service: str) -> str:
        return f"{self.database}_{service}"

    def url(self, service: str, password: str | None = None) -> str:
        password = password or self.passwords[service]
        return (
            f"postgresql+asyncpg://{self.role(service)}:{password}@127.0.0.1:5432/{self.database}"
        )

    def env(self, **overrides: str) -> dict[str, str]:
        env = {f"{s.upper()}_DATABASE_URL": self.url(s) for s in SERVICES}
        env.update(overrides)
        return env

    def settings(self, **values) -> MigrateSettings:
        return MigrateSettings(admin_dsn=ADMIN_DSN, migrate_wait_seconds=10, **values)


@pytest_asyncio.fixture(scope="module")
async def fresh() -> AsyncIterator[Fresh]:
    database = f"{PREFIX}{int(time.time())}_{secrets.token_hex(3)}_mig"
    box = Fresh(database, {s: secrets.token_hex(12) for s in SERVICES})
    try:
        yield box
    finally:
        await db_bootstrap.drop_environment(ADMIN_DSN, database, [box.role(s) for s in SERVICES])


async def admin_fetch(database: str, query: str, *args):
    conn = await asyncpg.connect(ADMIN_DSN, database=database)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def scram_matches(verifier: str, password: str) -> bool:
    """Does a PostgreSQL SCRAM-SHA-256 verifier belong to ``password``? (RFC 5802)"""
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


# --- against PostgreSQL ---------------------------------------------------------------------


async def test_first_run_creates_each_service_its_role_schema_and_tables(fresh: Fresh) -> None:
    lines: list[str] = []
    revisions = await run_migrations(fresh.settings(), fresh.env(), say=lines.append)
    assert set(revisions) == set(SERVICES)
    for service in SERVICES:
        (item,) = read_service_databases([service], fresh.env())
        state = await schema_state(item)
        assert state.current in state.heads, (service, state)
        owners = await admin_fetch(
            fresh.database,
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1",
            service,
        )
        # Every table belongs to the service's own role, none to the administrator.
        assert [r["tableowner"] for r in owners] == [fresh.role(service)]
        role = (
            await admin_fetch(
                "postgres",
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                "WHERE rolname = $1",
                fresh.role(service),
            )
        )[0]
        assert tuple(role) == (False, False, False, True)
    # Progress is reported without a single credential.
    output = "\n".join(lines)
    assert all(password not in output for password in fresh.passwords.values())


async def test_a_service_role_cannot_touch_another_services_schema(fresh: Fresh) -> None:
    await run_migrations(fresh.settings(), fresh.env())
    conn = await asyncpg.connect(fresh.url("referrals").replace("+asyncpg", ""))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM gateway.outbox")
    finally:
        await conn.close()


async def test_running_again_changes_nothing_but_sets_rotated_passwords(fresh: Fresh) -> None:
    before = await run_migrations(fresh.settings(), fresh.env())
    rotated = secrets.token_hex(12)
    env = fresh.env(REFERRALS_DATABASE_URL=fresh.url("referrals", rotated))
    after = await run_migrations(fresh.settings(), env)
    assert after == before
    (row,) = await admin_fetch(
        "postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = $1", fresh.role("referrals")
    )
    assert scram_matches(row["rolpassword"], rotated)
    assert not scram_matches(row["rolpassword"], fresh.passwords["referrals"])
    await run_migrations(fresh.settings(), fresh.env())  # and back


async def test_two_jobs_started_together_take_turns(fresh: Fresh) -> None:
    first, second = await asyncio.gather(
        run_migrations(fresh.settings(), fresh.env()),
        run_migrations(fresh.settings(), fresh.env()),
    )
    assert first == second


async def test_check_waits_for_the_migration_and_then_passes(fresh: Fresh) -> None:
    # A database of its own, so "not migrated yet" is real.
    other = Fresh(fresh.database + "_chk", {s: secrets.token_hex(12) for s in SERVICES})
    items = read_service_databases(["outcomes"], other.env())
    try:
        with pytest.raises(MigrationError, match="not ready"):
            await wait_until_migrated(items, timeout=0.5, say=lambda _: None, interval=0.1)
        waiting = asyncio.create_task(
            wait_until_migrated(items, timeout=60, say=lambda _: None, interval=0.1)
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await run_migrations(other.settings(migrate_services="outcomes"), other.env())
        (state,) = await asyncio.wait_for(waiting, 30)
        assert state.ready and state.current in state.heads
    finally:
        await db_bootstrap.drop_environment(ADMIN_DSN, other.database, [other.role("outcomes")])


async def test_check_accepts_a_schema_a_newer_release_has_migrated(fresh: Fresh) -> None:
    await run_migrations(fresh.settings(), fresh.env())
    (item,) = read_service_databases(["reporting"], fresh.env())
    current = (await schema_state(item)).current
    conn = await asyncpg.connect(ADMIN_DSN, database=fresh.database)
    try:
        await conn.execute("UPDATE reporting.alembic_version SET version_num = 'reporting_9999'")
        (state,) = await wait_until_migrated([item], timeout=5, say=lambda _: None)
        assert state.ready and "newer than this image" in state.describe
    finally:
        await conn.execute("UPDATE reporting.alembic_version SET version_num = $1", current)
        await conn.close()


async def test_postgres_that_never_answers_fails_the_job_clearly(fresh: Fresh) -> None:
    settings = MigrateSettings(
        admin_dsn="postgresql://postgres@127.0.0.1:1/postgres", migrate_wait_seconds=1
    )
    with pytest.raises(MigrationError, match="did not accept connections within 1s"):
        await run_migrations(settings, fresh.env(), say=lambda _: None)


async def test_an_admin_dsn_naming_a_missing_database_is_explained(fresh: Fresh) -> None:
    settings = MigrateSettings(
        admin_dsn="postgresql://postgres@127.0.0.1:5432/no_such_db_here", migrate_wait_seconds=2
    )
    with pytest.raises(MigrationError, match="does not exist"):
        await run_migrations(settings, fresh.env(), say=lambda _: None)


def test_the_command_runs_the_job_and_reports_revisions(fresh: Fresh) -> None:
    env = {**os.environ, **fresh.env(), "PATHWAYS_ADMIN_DSN": ADMIN_DSN}
    result = subprocess.run(
        [sys.executable, "-m", "pathways.cli", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"migrated {len(SERVICES)} service(s)" in result.stdout
    check = subprocess.run(
        [sys.executable, "-m", "pathways.cli", "migrate", "--check", "-s", "casework"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("casework: at ")


def test_the_command_fails_with_the_setting_to_fix_and_no_secret(fresh: Fresh) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
        **fresh.env(),
        "PATHWAYS_ADMIN_DSN": ADMIN_DSN,
    }
    del env["CASEWORK_DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "pathways.cli", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "CASEWORK_DATABASE_URL is not set" in result.stderr
    assert all(p not in result.stderr + result.stdout for p in fresh.passwords.values())


# --- reading the configuration (no database) -------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://r:p@db/pathways", "postgresql\\+asyncpg"),
        ("postgresql+asyncpg://r@db/pathways", "a password"),
        ("postgresql+asyncpg://r:p@db", "a database name"),
        ("postgresql+asyncpg://:p@db/pathways", "a user name"),
        ("postgresql+asyncpg://Referrals:p@db/pathways", "plain PostgreSQL role name"),
        ("not a url", "not a database URL"),
        ("", "is not set"),
    ],
)
def test_a_bad_service_url_names_the_variable(url: str, message: str) -> None:
    with pytest.raises(MigrationError, match=f"REFERRALS_DATABASE_URL.*{message}"):
        read_service_databases(["referrals"], {"REFERRALS_DATABASE_URL": url})


def test_services_may_not_share_a_role_or_use_the_administrator() -> None:
    shared = "postgresql+asyncpg://pathways_app:p@db/pathways"
    env = {"REFERRALS_DATABASE_URL": shared, "CASEWORK_DATABASE_URL": shared}
    with pytest.raises(MigrationError, match="share the role 'pathways_app'"):
        read_service_databases(["referrals", "casework"], env)
    env = {"OUTCOMES_DATABASE_URL": "postgresql+asyncpg://postgres:p@db/pathways"}
    with pytest.raises(MigrationError, match="administrator"):
        read_service_databases(["outcomes"], env, admin_user="postgres")


def test_variable_names_are_matched_case_insensitively_like_the_services_do() -> None:
    env = {"referrals_database_url": "postgresql+asyncpg://r:p@db/pathways"}
    (item,) = read_service_databases(["referrals"], env)
    assert item.role == "r"


def test_unknown_services_and_a_missing_admin_dsn_are_refused() -> None:
    with pytest.raises(MigrationError, match="unknown services \\['billing'\\]"):
        MigrateSettings(migrate_services="referrals,billing").services()
    with pytest.raises(MigrationError, match="PATHWAYS_ADMIN_DSN is not set"):
        admin_connection(MigrateSettings())
    with pytest.raises(MigrationError, match="libpq URL"):
        admin_connection(MigrateSettings(admin_dsn="mysql://root@db/x"))


def test_admin_credentials_from_a_secret_need_no_url_escaping() -> None:
    settings = MigrateSettings(
        admin_dsn="postgresql://pathways-db-rw:5432/postgres",
        admin_user="postgres",
        admin_password="p@ss/w:rd?#",
    )
    admin = admin_connection(settings)
    assert admin.role == "postgres"
    assert admin.url.password == "p@ss/w:rd?#"
    assert admin.url.host == "pathways-db-rw"
    assert "p@ss" not in admin.where


def test_schema_states() -> None:
    heads, known = frozenset({"x_0002"}), frozenset({"x_0001", "x_0002"})
    assert SchemaState("x", "x_0002", heads, known).ready
    assert not SchemaState("x", "x_0001", heads, known).ready
    assert "waiting for x_0002" in SchemaState("x", "x_0001", heads, known).describe
    assert not SchemaState("x", None, heads, known).ready
    assert SchemaState("x", "x_0003", heads, known).ready  # newer release: expand/contract


def test_env_names_come_from_the_settings_classes() -> None:
    gateway = settings_class("gateway")
    assert field_env_names(gateway, "admin_token") == {
        "PATHWAYS_ADMIN_TOKEN",
        "GATEWAY_ADMIN_TOKEN",
    }
    assert field_env_names(gateway, "database_url") == {"GATEWAY_DATABASE_URL"}
    assert field_env_names(PlatformSettings, "amqp_url") == {"PATHWAYS_AMQP_URL"}
    assert settings_class("referrals").service_name == "referrals"
