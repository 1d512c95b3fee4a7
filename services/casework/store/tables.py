"""The casework service's tables, all in the ``casework`` schema.

The migration ``casework_0002`` creates exactly these; keep the two in step.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import service_metadata
from shared.outbox import inbox_table, outbox_table

SCHEMA = "casework"
metadata = service_metadata(SCHEMA)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


# What casework has heard about each referral routed anywhere: routing and status from
# `referrals.referral.status_changed`, the person's details from
# `referrals.referral.accepted` (personal data: the provider's record of the person).
referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", UUID(as_uuid=True), primary_key=True),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True)),
    Column("source", Text, nullable=False),
    Column("referred_on", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_changed_at", DateTime(timezone=True)),
    Column("person", JSONB),
    Column("circumstances", JSONB),
    *_timestamps(),
)

participants = Table(
    "participants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # One participant per referral, whoever races to attach it.
    Column("referral_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("referred_on", Date, nullable=False),
    Column("attached_on", Date, nullable=False),
    Column("key_worker", Text, nullable=False),
    # The key worker named at attachment, so a retried attachment is recognised after
    # the participant has been reassigned.
    Column("attached_key_worker", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("left_on", Date),
    Column("exit_reason", Text),
    *_timestamps(),
    CheckConstraint("status IN ('active', 'exited')", name="status"),
    CheckConstraint("(status = 'exited') = (left_on IS NOT NULL)", name="left_on_iff_exited"),
    CheckConstraint("left_on IS NULL OR left_on >= attached_on", name="left_after_attached"),
    CheckConstraint("attached_on >= referred_on", name="attached_after_referred"),
)
# The caseload and list views: a provider's participants in attachment order.
Index(
    "ix_participants_provider_attached",
    participants.c.provider_id,
    participants.c.attached_on,
    participants.c.id,
)
Index(
    "ix_participants_attached",
    participants.c.attached_on,
    participants.c.id,
)

# Attachments casework has asked referrals for (contract §3): referrals owns the
# referral's status, so the participant is created only once it has granted one.
attachment_requests = Table(
    "attachment_requests",
    metadata,
    Column("referral_id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("programme", Text, nullable=False),
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("referred_on", Date, nullable=False),
    Column("attached_on", Date, nullable=False),
    Column("key_worker", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="requested"),
    # The referral's status when referrals refused (withdrawn, declined, ...).
    Column("refused_as", Text),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("answered_at", DateTime(timezone=True)),
    CheckConstraint("state IN ('requested', 'granted', 'refused')", name="state"),
    CheckConstraint(
        "(state = 'refused') = (refused_as IS NOT NULL)", name="refused_as_iff_refused"
    ),
    CheckConstraint(
        "(state = 'requested') = (answered_at IS NULL)", name="answered_iff_not_requested"
    ),
)

key_worker_assignments = Table(
    "key_worker_assignments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), ForeignKey(participants.c.id), nullable=False),
    Column("key_worker", Text, nullable=False),
    Column("assigned_on", Date, nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(
    "ix_key_worker_assignments_participant",
    key_worker_assignments.c.participant_id,
    key_worker_assignments.c.id,
)

assessments = Table(
    "assessments",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), ForeignKey(participants.c.id), nullable=False),
    Column("kind", Text, nullable=False),
    Column("assessed_on", Date, nullable=False),
    Column("barriers", JSONB, nullable=False),
    Column("wellbeing", SmallInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('initial', 'review', 'exit')", name="kind"),
    CheckConstraint("wellbeing IS NULL OR wellbeing BETWEEN 14 AND 70", name="wellbeing"),
)
Index("ix_assessments_participant", assessments.c.participant_id, assessments.c.assessed_on)
# Contract §3: one initial assessment per participant, enforced where races cannot slip by.
Index(
    "uq_assessments_one_initial",
    assessments.c.participant_id,
    unique=True,
    postgresql_where=text("kind = 'initial'"),
)

employment_episodes = Table(
    "employment_episodes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("participant_id", UUID(as_uuid=True), ForeignKey(participants.c.id), nullable=False),
    Column("employer", Text, nullable=False),
    Column("started_on", Date, nullable=False),
    Column("ended_on", Date),
    Column("hours_per_week", Numeric(5, 2), nullable=False),
    Column("weekly_earnings_pence", BigInteger),
    Column("self_employed", Boolean, nullable=False),
    *_timestamps(),
    CheckConstraint("ended_on IS NULL OR ended_on >= started_on", name="ended_after_started"),
    CheckConstraint("hours_per_week > 0 AND hours_per_week <= 168", name="hours"),
    CheckConstraint("weekly_earnings_pence IS NULL OR weekly_earnings_pence >= 0", name="earnings"),
)
Index(
    "ix_employment_episodes_participant",
    employment_episodes.c.participant_id,
    employment_episodes.c.started_on,
)

# Key-worker sessions synced from provider CRMs, keyed by the CRM's own id. No foreign
# key to participants: the bulk sync checks every participant itself in the same
# transaction, participants are never deleted, and a per-row RI check would be the
# single largest cost of a 1,000-row upsert.
sessions = Table(
    "sessions",
    metadata,
    Column("provider_id", UUID(as_uuid=True), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("participant_id", UUID(as_uuid=True), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("duration_minutes", Integer),
    Column("attendance", Text, nullable=False),
    Column("notes", Text),
    Column("modified_at", DateTime(timezone=True), nullable=False),
    *_timestamps(),
    PrimaryKeyConstraint("provider_id", "external_id", name="pk_sessions"),
    CheckConstraint(
        "kind IN ('one_to_one', 'group', 'phone', 'video', 'in_work_support')", name="kind"
    ),
    CheckConstraint("attendance IN ('attended', 'did_not_attend', 'cancelled')", name="attendance"),
    CheckConstraint(
        "duration_minutes IS NULL OR duration_minutes BETWEEN 0 AND 1440", name="duration"
    ),
)
Index("ix_sessions_participant_occurred", sessions.c.participant_id, sessions.c.occurred_at)
