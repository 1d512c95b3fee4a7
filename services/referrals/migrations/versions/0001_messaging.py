"""Outbox and inbox for the referrals service.

Revision ID: referrals_0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from shared.migrations import create_messaging_tables_v1

revision = "referrals_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "referrals"


def upgrade() -> None:
    create_messaging_tables_v1(SCHEMA)


def downgrade() -> None:
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
