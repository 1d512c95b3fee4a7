"""Programmes, referrals and idempotency keys.

Revision ID: referrals_0002
Revises: referrals_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "referrals_0002"
down_revision = "referrals_0001"
branch_labels = None
depends_on = None

SCHEMA = "referrals"


def upgrade() -> None:
    op.create_table(
        "programmes",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("eligible_benefits", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("min_age", sa.Integer, nullable=False),
        sa.Column("max_age", sa.Integer, nullable=False),
        sa.Column("providers", postgresql.JSONB, nullable=False),
        sa.Column(
            "defined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("code", name="pk_programmes"),
        schema=SCHEMA,
    )
    op.create_table(
        "referrals",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("referrer_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("external_ref", sa.Text, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("referred_on", sa.Date, nullable=False),
        sa.Column("referred_on_defaulted", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("provider_id", postgresql.UUID(as_uuid=True)),
        sa.Column("reasons", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("duplicate_of", postgresql.UUID(as_uuid=True)),
        sa.Column("history", postgresql.JSONB, nullable=False),
        sa.Column("person", postgresql.JSONB, nullable=False),
        sa.Column("circumstances", postgresql.JSONB, nullable=False),
        sa.Column("consent", postgresql.JSONB, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("nino", sa.Text),
        sa.Column("family_key", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("postcode_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("participant_id", postgresql.UUID(as_uuid=True)),
        sa.Column("attached_on", sa.Date),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_referrals"),
        sa.UniqueConstraint(
            "referrer_id", "external_ref", name="uq_referrals_referrer_id_external_ref"
        ),
        sa.CheckConstraint(
            "status IN ('received', 'accepted', 'rejected', 'duplicate', 'attached', "
            "'declined', 'withdrawn')",
            name="ck_referrals_status",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_referrals_referrer_received",
        "referrals",
        ["referrer_id", "received_at", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_referrals_provider_received",
        "referrals",
        ["provider_id", "received_at", "id"],
        schema=SCHEMA,
    )
    op.create_index("ix_referrals_received", "referrals", ["received_at", "id"], schema=SCHEMA)
    op.create_index("ix_referrals_updated_at", "referrals", ["updated_at"], schema=SCHEMA)
    op.create_index("ix_referrals_match_nino", "referrals", ["programme", "nino"], schema=SCHEMA)
    op.create_index(
        "ix_referrals_match_name",
        "referrals",
        ["programme", "family_key", "date_of_birth", "postcode_key"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_referrals_pending",
        "referrals",
        ["received_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'received'"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("partner_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("referral_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("partner_id", "key", name="pk_idempotency_keys"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.drop_table("referrals", schema=SCHEMA)
    op.drop_table("programmes", schema=SCHEMA)
