"""Alembic, one environment per service, each with its version table in its own schema.

``services/<name>/migrations/env.py`` is two lines that call :func:`run_env`;
:func:`upgrade` applies a service's migrations as that service's own role, so every
table it creates belongs to it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.outbox import notify_channel

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service: str, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["service"] = service
    return config


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


def run_env(target_metadata: MetaData, schema: str) -> None:
    """Body of every service's ``env.py``."""

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        # Never diff, or even look at, another service's schema.
        return name == schema if type_ == "schema" else True

    def do_run(connection: Connection) -> None:
        # The schema exists already: bootstrap made it, owned by this service's role.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,
            include_name=include_name,
            version_table_schema=schema,
            compare_type=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_online() -> None:
        url = context.config.get_main_option("sqlalchemy.url")
        engine = create_async_engine(
            url, poolclass=pool.NullPool, connect_args={"server_settings": {"search_path": schema}}
        )
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            version_table_schema=schema,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_online())


def outbox_notify_trigger_sql(schema: str) -> list[str]:
    """SQL for the trigger that NOTIFYs the relay when outbox rows are committed."""
    channel = notify_channel(schema)
    return [
        f'''CREATE OR REPLACE FUNCTION "{schema}".notify_outbox() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_notify('{channel}', '');
              RETURN NULL;
            END $$''',
        f'''CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
            FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".notify_outbox()''',
    ]


def create_messaging_tables_v1(schema: str) -> None:
    """Outbox and inbox as first released; call from a service's initial migration.

    Frozen on purpose: a later change to :mod:`shared.outbox` gets a ``_v2`` helper and
    a new migration in each service, never an edit here.
    """
    import sqlalchemy as sa
    from alembic import op
    from sqlalchemy.dialects import postgresql

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("partition", sa.SmallInteger, nullable=False),
        sa.Column("envelope", postgresql.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    for statement in outbox_notify_trigger_sql(schema):
        op.execute(statement)
    op.create_table(
        "inbox",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("event_id", name="pk_inbox"),
        schema=schema,
    )
