"""Claims record when casework confirmed the participant's employment as it stood.

A claim resting on employment is decided on the episodes casework answers with after
the claim arrived, not only on the episode events heard so far.

Revision ID: outcomes_0003
Revises: outcomes_0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "outcomes_0003"
down_revision = "outcomes_0002"
branch_labels = None
depends_on = None

SCHEMA = "outcomes"


def upgrade() -> None:
    op.add_column(
        "claims",
        sa.Column("employment_confirmed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("claims", "employment_confirmed_at", schema=SCHEMA)
