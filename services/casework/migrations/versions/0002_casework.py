"""Referrals as casework knows them, participants, key-worker history, assessments,
employment episodes and sessions.

Revision ID: casework_0002
Revises: casework_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "casework_0002"
down_revision = "casework_0001"
branch_labels = None
depends_on = None

SCHEMA = "casework"
UUID = postgresql.UUID(as_uuid=True)


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("referral_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("referred_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True)),
        sa.Column("person", postgresql.JSONB),
        sa.Column("circumstances", postgresql.JSONB),
        *_timestamps(),
        sa.PrimaryKeyConstraint("referral_id", name="pk_referrals"),
        schema=SCHEMA,
    )

    op.create_table(
        "participants",
        sa.Column("id", UUID, nullable=False),
        sa.Column("referral_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("referred_on", sa.Date, nullable=False),
        sa.Column("attached_on", sa.Date, nullable=False),
        sa.Column("key_worker", sa.Text, nullable=False),
        sa.Column("attached_key_worker", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("left_on", sa.Date),
        sa.Column("exit_reason", sa.Text),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_participants"),
        sa.UniqueConstraint("referral_id", name="uq_participants_referral_id"),
        sa.CheckConstraint("status IN ('active', 'exited')", name="ck_participants_status"),
        sa.CheckConstraint(
            "(status = 'exited') = (left_on IS NOT NULL)",
            name="ck_participants_left_on_iff_exited",
        ),
        sa.CheckConstraint(
            "left_on IS NULL OR left_on >= attached_on", name="ck_participants_left_after_attached"
        ),
        sa.CheckConstraint(
            "attached_on >= referred_on", name="ck_participants_attached_after_referred"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_participants_provider_attached",
        "participants",
        ["provider_id", "attached_on", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_participants_attached", "participants", ["attached_on", "id"], schema=SCHEMA
    )

    op.create_table(
        "key_worker_assignments",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("key_worker", sa.Text, nullable=False),
        sa.Column("assigned_on", sa.Date, nullable=False),
        sa.Column(
            "assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_key_worker_assignments"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            [f"{SCHEMA}.participants.id"],
            name="fk_key_worker_assignments_participant_id_participants",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_key_worker_assignments_participant",
        "key_worker_assignments",
        ["participant_id", "id"],
        schema=SCHEMA,
    )

    op.create_table(
        "assessments",
        sa.Column("id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("assessed_on", sa.Date, nullable=False),
        sa.Column("barriers", postgresql.JSONB, nullable=False),
        sa.Column("wellbeing", sa.SmallInteger),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            [f"{SCHEMA}.participants.id"],
            name="fk_assessments_participant_id_participants",
        ),
        sa.CheckConstraint("kind IN ('initial', 'review', 'exit')", name="ck_assessments_kind"),
        sa.CheckConstraint(
            "wellbeing IS NULL OR wellbeing BETWEEN 14 AND 70", name="ck_assessments_wellbeing"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_assessments_participant",
        "assessments",
        ["participant_id", "assessed_on"],
        schema=SCHEMA,
    )
    op.create_index(
        "uq_assessments_one_initial",
        "assessments",
        ["participant_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("kind = 'initial'"),
    )

    op.create_table(
        "employment_episodes",
        sa.Column("id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("employer", sa.Text, nullable=False),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("hours_per_week", sa.Numeric(5, 2), nullable=False),
        sa.Column("weekly_earnings_pence", sa.BigInteger),
        sa.Column("self_employed", sa.Boolean, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_employment_episodes"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            [f"{SCHEMA}.participants.id"],
            name="fk_employment_episodes_participant_id_participants",
        ),
        sa.CheckConstraint(
            "ended_on IS NULL OR ended_on >= started_on",
            name="ck_employment_episodes_ended_after_started",
        ),
        sa.CheckConstraint(
            "hours_per_week > 0 AND hours_per_week <= 168", name="ck_employment_episodes_hours"
        ),
        sa.CheckConstraint(
            "weekly_earnings_pence IS NULL OR weekly_earnings_pence >= 0",
            name="ck_employment_episodes_earnings",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_employment_episodes_participant",
        "employment_episodes",
        ["participant_id", "started_on"],
        schema=SCHEMA,
    )

    op.create_table(
        "sessions",
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("duration_minutes", sa.Integer),
        sa.Column("attendance", sa.Text, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("provider_id", "external_id", name="pk_sessions"),
        sa.CheckConstraint(
            "kind IN ('one_to_one', 'group', 'phone', 'video', 'in_work_support')",
            name="ck_sessions_kind",
        ),
        sa.CheckConstraint(
            "attendance IN ('attended', 'did_not_attend', 'cancelled')",
            name="ck_sessions_attendance",
        ),
        sa.CheckConstraint(
            "duration_minutes IS NULL OR duration_minutes BETWEEN 0 AND 1440",
            name="ck_sessions_duration",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_sessions_participant_occurred",
        "sessions",
        ["participant_id", "occurred_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "sessions",
        "employment_episodes",
        "assessments",
        "key_worker_assignments",
        "participants",
        "referrals",
    ):
        op.drop_table(table, schema=SCHEMA)
