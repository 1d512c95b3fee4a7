"""Webhook deliveries carry the referral's own order of its changes.

Two changes made at one instant (received, then accepted at once) share occurred_at;
until now the tie went to whichever random event id sorted first.

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None

SCHEMA = "gateway"
OPEN = "status IN ('pending', 'retrying')"
INDEX = "ix_webhook_deliveries_open_order"


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.drop_index(INDEX, "webhook_deliveries", schema=SCHEMA)
    op.create_index(
        INDEX,
        "webhook_deliveries",
        ["subscription_id", "referral_id", "occurred_at", "sequence", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index(INDEX, "webhook_deliveries", schema=SCHEMA)
    op.create_index(
        INDEX,
        "webhook_deliveries",
        ["subscription_id", "referral_id", "occurred_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text(OPEN),
    )
    op.drop_column("webhook_deliveries", "sequence", schema=SCHEMA)
