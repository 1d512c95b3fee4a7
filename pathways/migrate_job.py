"""``pathways migrate``: the one-shot job that readies PostgreSQL before a release starts.

docker-compose runs it as the ``migrate`` service (every app waits for it to finish) and
Kubernetes as the ``migrate`` Job. Given an administrator's connection and each
service's own connection URL, it

1. waits for PostgreSQL to accept connections,
2. creates each service's database if missing, and its login role and schema
   (idempotently; a role's password is set to the one in the service's URL, so
   rotating a password is: change the Secret, run the job, restart the service),
3. applies each service's Alembic migrations *as that service's role*, so every table
   belongs to the service that uses it.

Two copies started at once (a re-run Job, two ``compose up``) take turns on a
PostgreSQL advisory lock. ``pathways migrate --check`` is the other half: an init
container runs it before a new release's pods start and it waits until the database
has reached the revision the image expects, so pods never run ahead of their schema.

Environment (the job reads nothing else; services never get the admin credentials):

* ``PATHWAYS_ADMIN_DSN`` — libpq URL of a role that may create databases and roles,
  e.g. ``postgresql://postgres@postgres:5432/postgres`` (required unless ``--check``).
* ``PATHWAYS_ADMIN_USER`` / ``PATHWAYS_ADMIN_PASSWORD`` — optional; override the DSN's
  user and password, so a Kubernetes Secret's ``username``/``password`` keys can be used
  as they are, without URL escaping.
* ``<SERVICE>_DATABASE_URL`` — each service's own URL, the very variable the service
  reads (``REFERRALS_DATABASE_URL``...); the role name and password come from it.
* ``PATHWAYS_MIGRATE_SERVICES`` — comma-separated services to handle (default: all).
* ``PATHWAYS_MIGRATE_WAIT_SECONDS`` — how long to wait for PostgreSQL (default 120).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import typer
from alembic.script import ScriptDirectory
from pydantic import AliasChoices, AliasPath, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pathways import bootstrap as db_bootstrap
from shared import migrations
from shared.settings import ServiceSettings

# Serialises concurrent runs of the job (an arbitrary constant; advisory locks belong to
# a database, and every run takes this one in the admin DSN's database).
MIGRATE_LOCK_KEY = 0x7061_7468  # "path"
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Where progress lines go (stdout in the job; a list in tests). Never given a secret.
Say = Callable[[str], None]


class MigrationError(Exception):
    """The job cannot proceed; the message says which setting to fix (never a secret)."""


class MigrateSettings(BaseSettings):
    """The job's own settings; the services' database URLs are read per service."""

    model_config = SettingsConfigDict(env_prefix="PATHWAYS_", extra="ignore")

    admin_dsn: SecretStr | None = None
    admin_user: str | None = None
    admin_password: SecretStr | None = None
    migrate_services: str = ",".join(db_bootstrap.SERVICES)
    migrate_wait_seconds: float = 120.0

    def services(self) -> list[str]:
        wanted = [s.strip() for s in self.migrate_services.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(db_bootstrap.SERVICES))
        if unknown or not wanted:
            raise MigrationError(
                f"PATHWAYS_MIGRATE_SERVICES names unknown services {unknown}; "
                f"known: {', '.join(db_bootstrap.SERVICES)}"
            )
        return wanted


# --- which environment variables a settings class reads --------------------------------


def settings_class(service: str) -> type[ServiceSettings]:
    """The ``ServiceSettings`` subclass a service's ``settings.py`` defines."""
    module = importlib.import_module(f"services.{service}.settings")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value is not ServiceSettings
            and value.service_name == service
        ):
            return value
    raise LookupError(f"services.{service}.settings defines no settings class for {service}")


def field_env_names(cls: type[BaseSettings], field: str) -> set[str]:
    """The environment variables pydantic-settings consults for one field of ``cls``.

    A field with an alias is read under its alias(es) only, without the prefix; any
    other field as ``env_prefix + name``. Matching is case-insensitive unless the class
    says otherwise, so names are returned upper-cased.
    """
    info = cls.model_fields[field]
    alias = info.validation_alias or info.alias
    if alias is None:
        prefix = cls.model_config.get("env_prefix", "") or ""
        return {f"{prefix}{field}".upper()}
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    names: set[str] = set()
    for choice in choices:
        if isinstance(choice, AliasPath):
            choice = choice.path[0]
        names.add(str(choice).upper())
    return names


def settings_env_names(cls: type[BaseSettings]) -> dict[str, set[str]]:
    """Every variable ``cls`` reads, by dotted field path (nested settings included).

    A field that is itself a settings class (``platform: PlatformSettings``) is built by
    that class from its own prefix, so its fields are listed under ``platform.<name>``.
    """
    names: dict[str, set[str]] = {}
    for field, info in cls.model_fields.items():
        nested = _settings_type(info.annotation)
        if nested is not None:
            for sub, sub_names in settings_env_names(nested).items():
                names[f"{field}.{sub}"] = sub_names
        else:
            names[field] = field_env_names(cls, field)
    return names


def _settings_type(annotation: Any) -> type[BaseSettings] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    return None


def database_url_env(service: str) -> str:
    (name,) = field_env_names(settings_class(service), "database_url")
    return name


# --- the services' logins, read from their URLs ----------------------------------------


@dataclass(frozen=True)
class ServiceDatabase:
    service: str
    env_name: str
    url: URL

    @property
    def login(self) -> db_bootstrap.ServiceLogin:
        return db_bootstrap.ServiceLogin(self.service, self.role, self.url.password or "")

    @property
    def role(self) -> str:
        return self.url.username or ""

    @property
    def database(self) -> str:
        return self.url.database or ""

    @property
    def url_string(self) -> str:
        return self.url.render_as_string(hide_password=False)

    @property
    def where(self) -> str:
        """Host and database, for messages (no credentials)."""
        return f"{self.url.host}:{self.url.port or 5432}/{self.database}"


def read_service_database(service: str, env: Mapping[str, str]) -> ServiceDatabase:
    name = database_url_env(service)
    raw = _lookup(env, name)
    if not raw:
        raise MigrationError(f"{name} is not set (the {service} service's database URL)")
    try:
        url = make_url(raw)
    except ArgumentError:
        raise MigrationError(f"{name} is not a database URL") from None
    if url.drivername != "postgresql+asyncpg":
        raise MigrationError(f"{name} must start with postgresql+asyncpg://")
    problems = [
        what
        for what, ok in (
            ("a user name", bool(url.username)),
            ("a password", bool(url.password)),
            ("a host", bool(url.host)),
            ("a database name", bool(url.database)),
        )
        if not ok
    ]
    if problems:
        raise MigrationError(f"{name} lacks {', '.join(problems)}")
    if not _ROLE.match(url.username or ""):
        raise MigrationError(
            f"{name}: the user name must be a plain PostgreSQL role name "
            "(lower-case letters, digits, underscores)"
        )
    return ServiceDatabase(service, name, url)


def read_service_databases(
    services: Iterable[str], env: Mapping[str, str], *, admin_user: str | None = None
) -> list[ServiceDatabase]:
    found = [read_service_database(service, env) for service in services]
    by_role: dict[str, str] = {}
    for item in found:
        if admin_user and item.role == admin_user:
            raise MigrationError(
                f"{item.env_name} logs in as the administrator {admin_user!r}; "
                "each service needs a role of its own"
            )
        if item.role in by_role:
            raise MigrationError(
                f"{item.env_name} and {database_url_env(by_role[item.role])} share the role "
                f"{item.role!r}; each service needs a role of its own"
            )
        by_role[item.role] = item.service
    return found


def _lookup(env: Mapping[str, str], name: str) -> str | None:
    # pydantic-settings matches names case-insensitively; so does the job.
    if name in env:
        return env[name]
    folded = {key.upper(): value for key, value in env.items()}
    return folded.get(name.upper())


# --- the admin connection --------------------------------------------------------------


@dataclass(frozen=True)
class AdminConnection:
    url: URL  # credentials included: never print it

    @property
    def dsn(self) -> str:
        return self.url.render_as_string(hide_password=False)

    @property
    def role(self) -> str | None:
        return self.url.username

    @property
    def where(self) -> str:
        return f"{self.url.host}:{self.url.port or 5432}"

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, timeout=10)


def admin_connection(settings: MigrateSettings) -> AdminConnection:
    if settings.admin_dsn is None or not settings.admin_dsn.get_secret_value():
        raise MigrationError(
            "PATHWAYS_ADMIN_DSN is not set (a PostgreSQL URL of a role that may create "
            "databases and roles, e.g. postgresql://postgres@postgres:5432/postgres)"
        )
    dsn = settings.admin_dsn.get_secret_value()
    try:
        url = make_url(dsn)
    except ArgumentError:
        raise MigrationError("PATHWAYS_ADMIN_DSN is not a database URL") from None
    if url.drivername not in {"postgresql", "postgres"}:
        raise MigrationError("PATHWAYS_ADMIN_DSN must be a libpq URL (postgresql://...)")
    # SQLAlchemy quotes what it renders, so a generated password needs no escaping.
    if settings.admin_user:
        url = url.set(username=settings.admin_user)
    if settings.admin_password and settings.admin_password.get_secret_value():
        url = url.set(password=settings.admin_password.get_secret_value())
    return AdminConnection(url.set(drivername="postgresql"))


async def wait_for_postgres(admin: AdminConnection, timeout: float, say: Say = print) -> None:
    """Retry until PostgreSQL accepts the admin login (it may still be starting)."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            conn = await admin.connect()
        except (
            OSError,  # refused, unresolvable (a Service not there yet), timed out
            asyncpg.CannotConnectNowError,  # starting up, or in recovery
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.TooManyConnectionsError,
        ) as exc:
            if time.monotonic() + delay > deadline:
                raise MigrationError(
                    f"PostgreSQL at {admin.where} did not accept connections within "
                    f"{timeout:g}s ({type(exc).__name__})"
                ) from None
            say(f"waiting for PostgreSQL at {admin.where} ({type(exc).__name__}) ...")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            raise MigrationError(
                "PostgreSQL refused the administrator's login (PATHWAYS_ADMIN_DSN / "
                "PATHWAYS_ADMIN_USER / PATHWAYS_ADMIN_PASSWORD)"
            ) from None
        except asyncpg.InvalidCatalogNameError:
            raise MigrationError(
                "the database named in PATHWAYS_ADMIN_DSN does not exist "
                "(use the server's maintenance database, usually 'postgres')"
            ) from None
        await conn.close()
        return


@contextlib.asynccontextmanager
async def migration_lock(admin: AdminConnection, say: Say = print) -> AsyncIterator[None]:
    """Hold the job's advisory lock so two runs never interleave their DDL."""
    conn = await admin.connect()
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATE_LOCK_KEY):
            say("another migration is running; waiting for it to finish ...")
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK_KEY)
        yield
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK_KEY)
        await conn.close()


# --- the job -------------------------------------------------------------------------


async def run_migrations(
    settings: MigrateSettings, env: Mapping[str, str], say: Say = print
) -> dict[str, str]:
    """Create what is missing and migrate every selected service; returns revisions."""
    admin = admin_connection(settings)
    databases = read_service_databases(settings.services(), env, admin_user=admin.role)
    await wait_for_postgres(admin, settings.migrate_wait_seconds, say)
    revisions: dict[str, str] = {}
    async with migration_lock(admin, say):
        for database, group in _by_database(databases).items():
            say(f"database {database}: roles and schemas for {', '.join(g.service for g in group)}")
            await db_bootstrap.create_database(admin.dsn, database)
            await db_bootstrap.create_roles_and_schemas(
                admin.dsn, database, [g.login for g in group]
            )
        for item in databases:
            # Alembic's env runs its own event loop; keep it off ours.
            await asyncio.to_thread(migrations.upgrade, item.service, item.url_string)
            revisions[item.service] = await current_revision(item) or "(none)"
            say(f"{item.service}: at revision {revisions[item.service]} ({item.where})")
    return revisions


def _by_database(databases: list[ServiceDatabase]) -> dict[str, list[ServiceDatabase]]:
    grouped: dict[str, list[ServiceDatabase]] = {}
    for item in databases:
        grouped.setdefault(item.database, []).append(item)
    return grouped


# --- is the database where this image expects it? ----------------------------------------


def head_revisions(item: ServiceDatabase) -> set[str]:
    script = ScriptDirectory.from_config(migrations.alembic_config(item.service, item.url_string))
    return set(script.get_heads())


def known_revisions(item: ServiceDatabase) -> set[str]:
    script = ScriptDirectory.from_config(migrations.alembic_config(item.service, item.url_string))
    return {revision.revision for revision in script.walk_revisions()}


async def current_revision(item: ServiceDatabase) -> str | None:
    """The revision recorded in the service's schema, read as the service's own role."""
    conn = await asyncpg.connect(_libpq(item.url), timeout=10)
    try:
        table = await conn.fetchval(
            "SELECT to_regclass(quote_ident($1) || '.alembic_version')", item.service
        )
        if table is None:
            return None
        return await conn.fetchval(f'SELECT version_num FROM "{item.service}".alembic_version')
    finally:
        await conn.close()


@dataclass(frozen=True)
class SchemaState:
    service: str
    current: str | None
    heads: frozenset[str]
    known: frozenset[str]

    @property
    def ready(self) -> bool:
        """At this image's head, or ahead of it (a newer release already migrated).

        Being ahead is accepted because migrations are expand-then-contract (see
        docs/deploy.md): the schema of release N+1 still serves release N, which is what
        makes a rollback possible.
        """
        return self.current is not None and (
            self.current in self.heads or self.current not in self.known
        )

    @property
    def describe(self) -> str:
        if self.current is None:
            return "not migrated yet"
        if self.current in self.heads:
            return f"at {self.current}"
        if self.current not in self.known:
            return f"at {self.current}, newer than this image (expand/contract: accepted)"
        return f"at {self.current}, waiting for {', '.join(sorted(self.heads))}"


async def schema_state(item: ServiceDatabase) -> SchemaState:
    return SchemaState(
        item.service,
        await current_revision(item),
        frozenset(head_revisions(item)),
        frozenset(known_revisions(item)),
    )


async def wait_until_migrated(
    items: list[ServiceDatabase], timeout: float, say: Say = print, interval: float = 2.0
) -> list[SchemaState]:
    """Poll until every service's schema is ready for this image, or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        states: list[SchemaState] = []
        for item in items:
            try:
                states.append(await schema_state(item))
            except (OSError, asyncpg.PostgresError) as exc:
                states.append(SchemaState(item.service, None, frozenset(), frozenset()))
                say(f"{item.service}: database not reachable yet ({type(exc).__name__})")
        if all(state.ready for state in states):
            return states
        if time.monotonic() + interval > deadline:
            waiting = "; ".join(f"{s.service} {s.describe}" for s in states if not s.ready)
            raise MigrationError(f"schema not ready within {timeout:g}s: {waiting}")
        await asyncio.sleep(interval)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- command line ---------------------------------------------------------------------


def migrate_command(
    check: bool = typer.Option(
        False,
        "--check",
        help="Only wait until the schema is at this image's revision (init containers).",
    ),
    service: list[str] = typer.Option(
        None, "--service", "-s", help="Service(s) to handle (default: PATHWAYS_MIGRATE_SERVICES)."
    ),
    wait: float | None = typer.Option(
        None, "--wait", help="Seconds to wait (default: PATHWAYS_MIGRATE_WAIT_SECONDS)."
    ),
) -> None:
    """Create roles, schemas and apply migrations (docker-compose / Kubernetes job)."""
    try:
        settings = MigrateSettings()
        if service:
            settings = settings.model_copy(update={"migrate_services": ",".join(service)})
        if wait is not None:
            settings = settings.model_copy(update={"migrate_wait_seconds": wait})
        if check:
            items = read_service_databases(settings.services(), os.environ)
            states = asyncio.run(
                wait_until_migrated(items, settings.migrate_wait_seconds, say=typer.echo)
            )
            for state in states:
                typer.echo(f"{state.service}: {state.describe}")
            return
        revisions = asyncio.run(run_migrations(settings, os.environ, say=typer.echo))
    except (MigrationError, ValidationError) as exc:
        typer.echo(f"pathways migrate: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"migrated {len(revisions)} service(s)")
    sys.stdout.flush()
