"""Webhook deliveries record their first attempt, from which their retry period runs.

The period ran from created_at, but a referral's later delivery waits while an earlier
one is retried: by its first attempt it could be past its period, and be given up after
that one attempt.

Open deliveries already attempted get their last attempt as their first: the true first
is not known, and no earlier guess would be safe (it could cut a period short). For the
many attempted once it is exact; the rest are retried for somewhat longer than needed.
Deliveries not yet attempted (held ones among them) get their first attempt's time when
it happens. Closed ones are left alone: nothing reads it for them.

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("first_attempted_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.execute(
        f"""
        UPDATE {SCHEMA}.webhook_deliveries
        SET first_attempted_at = last_attempt_at
        WHERE status IN ('pending', 'retrying') AND attempts > 0
        """
    )


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "first_attempted_at", schema=SCHEMA)
