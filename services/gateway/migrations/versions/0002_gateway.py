"""Partners, API keys, programmes, the audit log, webhook subscriptions and deliveries.

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
OPEN = "status IN ('pending', 'retrying')"


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_partners"),
        sa.CheckConstraint(
            "kind IN ('jcp', 'probation', 'treatment', 'provider', 'programme_office')",
            name="ck_partners_kind",
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "api_keys",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("partner_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        sa.ForeignKeyConstraint(
            ["partner_id"], [f"{SCHEMA}.partners.id"], name="fk_api_keys_partner_id_partners"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_api_keys_partner_id", "api_keys", ["partner_id"], schema=SCHEMA)
    op.create_table(
        "programmes",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("code", name="pk_programmes"),
        schema=SCHEMA,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("partner_id", postgresql.UUID(as_uuid=True)),
        sa.Column("key_id", postgresql.UUID(as_uuid=True)),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("request_id", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        schema=SCHEMA,
    )
    op.create_index("ix_audit_log_partner_id_id", "audit_log", ["partner_id", "id"], schema=SCHEMA)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema=SCHEMA)
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("partner_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscriptions"),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            [f"{SCHEMA}.partners.id"],
            name="fk_webhook_subscriptions_partner_id_partners",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_subscriptions_partner_id",
        "webhook_subscriptions",
        ["partner_id"],
        schema=SCHEMA,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("subscription_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("referral_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True)),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            [f"{SCHEMA}.webhook_subscriptions.id"],
            name="fk_webhook_deliveries_subscription_id_webhook_subscriptions",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'retrying', 'delivered', 'failed', 'cancelled')",
            name="ck_webhook_deliveries_status",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_webhook_deliveries_subscription_id_event_id",
        "webhook_deliveries",
        ["subscription_id", "event_id"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        schema=SCHEMA,
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_webhook_deliveries_open_order",
        "webhook_deliveries",
        ["subscription_id", "referral_id", "occurred_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_webhook_deliveries_subscription_status",
        "webhook_deliveries",
        ["subscription_id", "status", "id"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries", schema=SCHEMA)
    op.drop_table("webhook_subscriptions", schema=SCHEMA)
    op.drop_table("audit_log", schema=SCHEMA)
    op.drop_table("programmes", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)
    op.drop_table("partners", schema=SCHEMA)
