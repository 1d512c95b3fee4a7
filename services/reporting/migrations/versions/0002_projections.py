"""Event log, fact projections and daily rollups of the reporting service.

Revision ID: reporting_0002
Revises: reporting_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "reporting_0002"
down_revision = "reporting_0001"
branch_labels = None
depends_on = None

SCHEMA = "reporting"
UUID = postgresql.UUID(as_uuid=True)


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer, nullable=False, server_default="0") for n in names]


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("event_id", UUID, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("envelope", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_event_log"),
        sa.UniqueConstraint("event_id", name="uq_event_log_event_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "rebuild_state",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("in_progress", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("events_replayed", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_rebuild_state"),
        sa.CheckConstraint("id = 1", name="ck_rebuild_state_single_row"),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.rebuild_state (id, in_progress) VALUES (1, false)")

    op.create_table(
        "programmes",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("sustainment_weeks", sa.Integer, nullable=False),
        sa.Column("job_start_target", sa.Numeric),
        sa.Column("sustainment_target", sa.Numeric),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_programmes"),
        schema=SCHEMA,
    )
    op.create_table(
        "referrals",
        sa.Column("referral_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("referred_on", sa.Date, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("local_authority", sa.Text),
        sa.Column("benefit", sa.Text),
        sa.Column("gender", sa.Text),
        sa.Column("age_band", sa.Text),
        sa.Column("provider_id", UUID),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ever_accepted", sa.Boolean, nullable=False),
        sa.Column("ever_duplicate", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("referral_id", name="pk_referrals"),
        schema=SCHEMA,
    )
    op.create_index("ix_referrals_programme", "referrals", ["programme"], schema=SCHEMA)

    op.create_table(
        "participants",
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID),
        sa.Column("referral_id", UUID),
        sa.Column("attached_on", sa.Date),
        sa.Column("job_start_on", sa.Date),
        sa.Column("sustained_13_on", sa.Date),
        sa.Column("sustained_26_on", sa.Date),
        sa.Column("sustained_50_on", sa.Date),
        sa.Column("local_authority", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("benefit", sa.Text),
        sa.Column("gender", sa.Text),
        sa.Column("age_band", sa.Text),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participants"),
        schema=SCHEMA,
    )
    op.create_index("ix_participants_referral_id", "participants", ["referral_id"], schema=SCHEMA)
    op.create_index(
        "ix_participants_job_starts",
        "participants",
        ["programme", "job_start_on"],
        schema=SCHEMA,
        postgresql_where=sa.text("job_start_on IS NOT NULL"),
        postgresql_include=[
            "attached_on",
            "provider_id",
            "local_authority",
            "source",
            "benefit",
            "gender",
            "age_band",
        ],
    )

    op.create_table(
        "claims",
        sa.Column("claim_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("status_rank", sa.SmallInteger, nullable=False),
        sa.Column("achieved_on", sa.Date, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("claim_id", name="pk_claims"),
        schema=SCHEMA,
    )
    op.create_index("ix_claims_participant_id", "claims", ["participant_id"], schema=SCHEMA)

    op.create_table(
        "accruals",
        sa.Column("line_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("claim_id", UUID),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount_pence", sa.BigInteger, nullable=False),
        sa.Column("accrued_on", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("line_id", name="pk_accruals"),
        schema=SCHEMA,
    )
    op.create_index("ix_accruals_participant_id", "accruals", ["participant_id"], schema=SCHEMA)

    op.create_table(
        "assessments",
        sa.Column("assessment_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("assessed_on", sa.Date, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("barriers", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_assessments"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_assessments_participant_id", "assessments", ["participant_id"], schema=SCHEMA
    )

    op.create_table(
        "performance_daily",
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("dim", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *_counts(
            "referrals",
            "accepted",
            "attachments",
            "job_starts",
            "sustained_13",
            "sustained_26",
            "sustained_50",
            "accrual_lines",
        ),
        sa.Column("accrued_pence", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("programme", "dim", "key", "day", name="pk_performance_daily"),
        schema=SCHEMA,
    )
    op.create_table(
        "cohort_daily",
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("attached_on", sa.Date, nullable=False),
        sa.Column("months_to_job_start", sa.SmallInteger, nullable=False),
        *_counts("participants"),
        sa.PrimaryKeyConstraint(
            "programme", "attached_on", "months_to_job_start", name="pk_cohort_daily"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "barrier_daily",
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("barrier", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *_counts("scored", "severe", "reviewed", "improved"),
        sa.PrimaryKeyConstraint("programme", "barrier", "day", name="pk_barrier_daily"),
        schema=SCHEMA,
    )
    op.create_table(
        "barrier_means_daily",
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *_counts("participants", "severe_initial", "severe_latest"),
        sa.PrimaryKeyConstraint("programme", "day", name="pk_barrier_means_daily"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "barrier_means_daily",
        "barrier_daily",
        "cohort_daily",
        "performance_daily",
        "assessments",
        "accruals",
        "claims",
        "participants",
        "referrals",
        "programmes",
        "rebuild_state",
        "event_log",
    ):
        op.drop_table(table, schema=SCHEMA)
