"""Facts from events (programmes, participants, employment episodes), outcome claims with
their once-per-type slot, and the append-only ledger.

Revision ID: outcomes_0002
Revises: outcomes_0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "outcomes_0002"
down_revision = "outcomes_0001"
branch_labels = None
depends_on = None

SCHEMA = "outcomes"
UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB

TYPES = (
    "'job_start', 'sustained_13', 'sustained_26', 'sustained_50', 'qualification', "
    "'volunteering_start', 'education_start'"
)
STATUSES = "'submitted', 'review', 'validated', 'rejected'"
SLOT_STATUSES = "'submitted', 'review', 'validated'"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "programmes",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("support_weeks", sa.Integer, nullable=False),
        sa.Column("min_job_hours", sa.Float, nullable=False),
        sa.Column("sustainment_weeks", sa.Integer, nullable=False),
        sa.Column("tariff", JSONB, nullable=False),
        sa.Column("defined_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("code", name="pk_programmes"),
        schema=SCHEMA,
    )

    op.create_table(
        "participants",
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("referral_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("attached_on", sa.Date, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participants"),
        schema=SCHEMA,
    )
    op.create_index("ix_participants_programme", "participants", ["programme"], schema=SCHEMA)

    op.create_table(
        "employment_episodes",
        sa.Column("episode_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("hours_per_week", sa.Float, nullable=False),
        sa.Column("self_employed", sa.Boolean, nullable=False),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("episode_id", name="pk_employment_episodes"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_employment_episodes_participant_id",
        "employment_episodes",
        ["participant_id"],
        schema=SCHEMA,
    )

    op.create_table(
        "claims",
        sa.Column("id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("programme", sa.Text),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("achieved_on", sa.Date, nullable=False),
        sa.Column("employment_id", UUID),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reasons", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("holds_slot", sa.Boolean, nullable=False),
        sa.Column("duplicate_of", UUID),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("facts_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision", JSONB),
        sa.PrimaryKeyConstraint("id", name="pk_claims"),
        sa.UniqueConstraint("seq", name="uq_claims_seq"),
        sa.CheckConstraint(f"type IN ({TYPES})", name="ck_claims_type"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_claims_status"),
        sa.CheckConstraint(
            f"NOT holds_slot OR status IN ({SLOT_STATUSES})", name="ck_claims_slot_status"
        ),
        schema=SCHEMA,
    )
    # Once per type, enforced here: one slot-holding claim per participant, provider, type.
    op.create_index(
        "uq_claims_slot",
        "claims",
        ["participant_id", "provider_id", "type"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("holds_slot"),
    )
    op.create_index("ix_claims_provider_id_seq", "claims", ["provider_id", "seq"], schema=SCHEMA)
    op.create_index("ix_claims_participant_id", "claims", ["participant_id"], schema=SCHEMA)
    op.create_index(
        "ix_claims_waiting",
        "claims",
        ["facts_deadline"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'submitted'"),
    )
    op.create_index(
        "ix_claims_validated_programme_achieved_on",
        "claims",
        ["programme", "achieved_on"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'validated'"),
    )

    op.create_table(
        "ledger_lines",
        sa.Column("id", UUID, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("programme", sa.Text, nullable=False),
        sa.Column("provider_id", UUID, nullable=False),
        sa.Column("participant_id", UUID, nullable=False),
        sa.Column("claim_id", UUID),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amount_pence", sa.BigInteger, nullable=False),
        sa.Column("accrued_on", sa.Date, nullable=False),
        sa.Column("reverses_line_id", UUID),
        sa.Column("note", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_lines"),
        sa.UniqueConstraint("seq", name="uq_ledger_lines_seq"),
        sa.UniqueConstraint("reverses_line_id", name="uq_ledger_lines_reverses_line_id"),
        sa.ForeignKeyConstraint(
            ["reverses_line_id"],
            [f"{SCHEMA}.ledger_lines.id"],
            name="fk_ledger_lines_reverses_line_id_ledger_lines",
        ),
        sa.CheckConstraint(
            "(kind = 'attachment') = (claim_id IS NULL)",
            name="ck_ledger_lines_claim_line_has_claim",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_ledger_lines_attachment",
        "ledger_lines",
        ["participant_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("kind = 'attachment' AND reverses_line_id IS NULL"),
    )
    op.create_index(
        "uq_ledger_lines_claim",
        "ledger_lines",
        ["claim_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("claim_id IS NOT NULL AND reverses_line_id IS NULL"),
    )
    op.create_index(
        "ix_ledger_lines_statement",
        "ledger_lines",
        ["provider_id", "programme", "accrued_on"],
        schema=SCHEMA,
    )
    # Append-only: the service's role owns the table, so revoking rights would not stop
    # it; a trigger does. A correction is a new, reversing line.
    op.execute(
        f"""CREATE FUNCTION "{SCHEMA}".ledger_lines_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'ledger lines are append-only: % refused', TG_OP
                USING ERRCODE = 'restrict_violation',
                      HINT = 'correct an accrual with a new reversing line';
            END $$"""
    )
    op.execute(
        f"""CREATE TRIGGER ledger_lines_no_update_or_delete
            BEFORE UPDATE OR DELETE ON "{SCHEMA}".ledger_lines
            FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".ledger_lines_append_only()"""
    )
    op.execute(
        f"""CREATE TRIGGER ledger_lines_no_truncate
            BEFORE TRUNCATE ON "{SCHEMA}".ledger_lines
            FOR EACH STATEMENT EXECUTE FUNCTION "{SCHEMA}".ledger_lines_append_only()"""
    )


def downgrade() -> None:
    op.drop_table("ledger_lines", schema=SCHEMA)
    op.execute(f'DROP FUNCTION "{SCHEMA}".ledger_lines_append_only()')
    op.drop_table("claims", schema=SCHEMA)
    op.drop_table("employment_episodes", schema=SCHEMA)
    op.drop_table("participants", schema=SCHEMA)
    op.drop_table("programmes", schema=SCHEMA)
