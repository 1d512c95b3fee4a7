"""Attachments casework has asked referrals for.

An attachment is granted by referrals, which owns the referral's status, before the
participant is created: a withdrawal or decline and an attachment are then settled in
one place, whichever comes first.

Revision ID: casework_0003
Revises: casework_0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "casework_0003"
down_revision = "casework_0002"
branch_labels = None
depends_on = None

SCHEMA = "casework"
UUID = postgresql.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "attachment_requests",
        sa.Column("referral_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("referred_on", sa.Date, nullable=False),
        sa.Column("attached_on", sa.Date, nullable=False),
        sa.Column("key_worker", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="requested"),
        sa.Column("refused_as", sa.Text),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("referral_id", name="pk_attachment_requests"),
        sa.UniqueConstraint("participant_id", name="uq_attachment_requests_participant_id"),
        sa.CheckConstraint(
            "state IN ('requested', 'granted', 'refused')", name="ck_attachment_requests_state"
        ),
        sa.CheckConstraint(
            "(state = 'refused') = (refused_as IS NOT NULL)",
            name="ck_attachment_requests_refused_as_iff_refused",
        ),
        sa.CheckConstraint(
            "(state = 'requested') = (answered_at IS NULL)",
            name="ck_attachment_requests_answered_iff_not_requested",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("attachment_requests", schema=SCHEMA)
