"""Tables of the ``reporting`` schema.

Three layers, none holding a name, NINO, date of birth, postcode or phone (no event the
service consumes carries them):

* ``event_log`` — every envelope received, kept so the projections can be rebuilt;
* facts — one row per programme, referral, participant, claim, ledger line and
  assessment, merged order-tolerantly from events;
* rollups — daily sums the reports add up (see
  :mod:`services.reporting.domain.contributions`), so a report over a million
  participants reads thousands of rows, not millions.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import service_metadata
from shared.outbox import inbox_table, outbox_table

SCHEMA = "reporting"
metadata = service_metadata(SCHEMA)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)

# --- event log and rebuild state -------------------------------------------------------

event_log = Table(
    "event_log",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("envelope", JSONB, nullable=False),
)

# One row (id 1). While a rebuild runs, handlers only log events; the rebuild applies
# them before it finishes. See services.reporting.rebuild.
rebuild_state = Table(
    "rebuild_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("in_progress", Boolean, nullable=False, server_default=text("false")),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("events_replayed", BigInteger),
    CheckConstraint("id = 1", name="single_row"),
)

# --- facts ------------------------------------------------------------------------------

programmes = Table(
    "programmes",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("sustainment_weeks", Integer, nullable=False),
    Column("job_start_target", Numeric),
    Column("sustainment_target", Numeric),
    Column("definition", JSONB, nullable=False),
)

referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", UUID(as_uuid=True), primary_key=True),
    Column("programme", Text, nullable=False),
    Column("referred_on", Date, nullable=False),
    Column("source", Text),
    Column("local_authority", Text),
    Column("benefit", Text),
    Column("gender", Text),
    Column("age_band", Text),
    Column("provider_id", UUID(as_uuid=True)),
    Column("status", Text, nullable=False),
    Column("status_rank", SmallInteger, nullable=False),
    Column("status_changed_at", DateTime(timezone=True), nullable=False),
    Column("ever_accepted", Boolean, nullable=False),
    Column("ever_duplicate", Boolean, nullable=False),
)
Index("ix_referrals_programme", referrals.c.programme)

participants = Table(
    "participants",
    metadata,
    Column("participant_id", UUID(as_uuid=True), primary_key=True),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True)),
    Column("referral_id", UUID(as_uuid=True)),
    Column("attached_on", Date),
    Column("job_start_on", Date),
    Column("sustained_13_on", Date),
    Column("sustained_26_on", Date),
    Column("sustained_50_on", Date),
    # Copied from the referral once both are known (group-by keys).
    Column("local_authority", Text),
    Column("source", Text),
    Column("benefit", Text),
    Column("gender", Text),
    Column("age_band", Text),
)
Index("ix_participants_referral_id", participants.c.referral_id)
# min_months_attached: job starts in the last months before as_of, with what grouping
# needs, read by an index-only scan.
Index(
    "ix_participants_job_starts",
    participants.c.programme,
    participants.c.job_start_on,
    postgresql_where=participants.c.job_start_on.is_not(None),
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

claims = Table(
    "claims",
    metadata,
    Column("claim_id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_rank", SmallInteger, nullable=False),
    Column("achieved_on", Date, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
Index("ix_claims_participant_id", claims.c.participant_id)

accruals = Table(
    "accruals",
    metadata,
    Column("line_id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("claim_id", UUID(as_uuid=True)),
    Column("kind", Text, nullable=False),
    Column("amount_pence", BigInteger, nullable=False),
    Column("accrued_on", Date, nullable=False),
)
Index("ix_accruals_participant_id", accruals.c.participant_id)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("programme", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("assessed_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("barriers", JSONB, nullable=False),  # barrier key -> score 0..6, scored only
)
Index("ix_assessments_participant_id", assessments.c.participant_id)

# --- rollups ----------------------------------------------------------------------------

performance_daily = Table(
    "performance_daily",
    metadata,
    Column("programme", Text, primary_key=True),
    Column("dim", Text, primary_key=True),  # "all" or a group_by key
    Column("key", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("referrals", Integer, nullable=False, server_default="0"),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("attachments", Integer, nullable=False, server_default="0"),
    Column("job_starts", Integer, nullable=False, server_default="0"),
    Column("sustained_13", Integer, nullable=False, server_default="0"),
    Column("sustained_26", Integer, nullable=False, server_default="0"),
    Column("sustained_50", Integer, nullable=False, server_default="0"),
    Column("accrual_lines", Integer, nullable=False, server_default="0"),
    Column("accrued_pence", BigInteger, nullable=False, server_default="0"),
)

cohort_daily = Table(
    "cohort_daily",
    metadata,
    Column("programme", Text, primary_key=True),
    Column("attached_on", Date, primary_key=True),
    # First month m with the job start on or before attached_on + m months; 0 = none
    # within 24 months (or no job start).
    Column("months_to_job_start", SmallInteger, primary_key=True),
    Column("participants", Integer, nullable=False, server_default="0"),
)

barrier_daily = Table(
    "barrier_daily",
    metadata,
    Column("programme", Text, primary_key=True),
    Column("barrier", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("scored", Integer, nullable=False, server_default="0"),
    Column("severe", Integer, nullable=False, server_default="0"),
    Column("reviewed", Integer, nullable=False, server_default="0"),
    Column("improved", Integer, nullable=False, server_default="0"),
)

barrier_means_daily = Table(
    "barrier_means_daily",
    metadata,
    Column("programme", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("participants", Integer, nullable=False, server_default="0"),
    Column("severe_initial", Integer, nullable=False, server_default="0"),
    Column("severe_latest", Integer, nullable=False, server_default="0"),
)

FACT_TABLES = (programmes, referrals, participants, claims, accruals, assessments)
ROLLUP_TABLES = (performance_daily, cohort_daily, barrier_daily, barrier_means_daily)
PROJECTION_TABLES = FACT_TABLES + ROLLUP_TABLES
