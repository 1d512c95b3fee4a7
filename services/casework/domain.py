"""The casework service's rules: plain functions and dataclasses, no I/O.

Names follow the programme: a *referral* routed to a provider becomes a *participant*
when it is *attached*; a *key worker* records *sessions*, *barrier assessments* and
*employment episodes*; the participant *exits* when support ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from shared.events.casework import BARRIERS

# Business dates (attached_on, left_on, "today") are UK calendar dates.
UK = ZoneInfo("Europe/London")

MAX_SESSIONS_PER_SYNC = 1000
# A CRM clock running slightly fast must not turn its own sessions into errors.
CLOCK_SKEW = timedelta(minutes=5)


def uk_today(now: datetime) -> date:
    return now.astimezone(UK).date()


def uk_date(moment: datetime) -> date:
    return moment.astimezone(UK).date()


# --- participants ------------------------------------------------------------------


class ParticipantStatus(StrEnum):
    ACTIVE = "active"
    # The contract names only `active`; a participant who has left is `exited`, the
    # word the exit endpoint and the `casework.participant.exited` event use.
    EXITED = "exited"


class ExitReason(StrEnum):
    COMPLETED = "completed"
    LEFT_EARLY = "left_early"
    MOVED_AWAY = "moved_away"
    OTHER = "other"


# --- what casework knows about referrals (from the referrals service's events) --------

# A referral only moves forward through these stages (contract §2.1), so a status from
# a later stage always wins over one from an earlier stage, whatever order the events
# arrive in; within a stage the later `changed_at` wins.
REFERRAL_STAGE: Mapping[str, int] = {
    "received": 0,
    "accepted": 1,
    "rejected": 1,
    "duplicate": 1,
    "attached": 2,
    "declined": 2,
    "withdrawn": 2,
}


def status_supersedes(
    current: str | None,
    current_at: datetime | None,
    incoming: str,
    incoming_at: datetime | None,
) -> bool:
    """Should a referral status learnt from an event replace the one already known?"""
    if current is None:
        return True
    current_stage = REFERRAL_STAGE.get(current, 0)
    incoming_stage = REFERRAL_STAGE.get(incoming, 0)
    if incoming_stage != current_stage:
        return incoming_stage > current_stage
    if incoming_at is None:
        return False
    return current_at is None or incoming_at > current_at


@dataclass(frozen=True)
class ReferralNews:
    """What one referrals event says about a referral (``person`` and ``circumstances``
    only from ``referrals.referral.accepted``, which has no change time)."""

    referral_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID | None
    source: str
    referred_on: date
    status: str
    changed_at: datetime | None
    person: Mapping[str, object] | None = None
    circumstances: Mapping[str, object] | None = None


@dataclass(frozen=True)
class KnownReferral:
    """What casework keeps of a referral from its news (the routing columns)."""

    status: str
    status_changed_at: datetime | None
    provider_id: uuid.UUID | None
    person: Mapping[str, object] | None = None
    circumstances: Mapping[str, object] | None = None

    @classmethod
    def first(cls, news: ReferralNews) -> KnownReferral:
        return cls(news.status, news.changed_at, news.provider_id, news.person, news.circumstances)


def merge_news(known: KnownReferral, news: ReferralNews) -> KnownReferral:
    """``known`` with one more event's news merged in; any order of arrival gives the
    same end state (later stage, then later change time, wins; routed once)."""
    status, changed_at = known.status, known.status_changed_at
    if status_supersedes(status, changed_at, news.status, news.changed_at):
        status = news.status
        if news.changed_at is not None:
            changed_at = news.changed_at
    # A referral is routed once; a later event without a provider (rejected, or an
    # older `received`) never unroutes it.
    provider_id = known.provider_id if known.provider_id is not None else news.provider_id
    person, circumstances = known.person, known.circumstances
    if news.person is not None:
        person, circumstances = news.person, news.circumstances
    return KnownReferral(status, changed_at, provider_id, person, circumstances)


def merge_all(known: KnownReferral, news: Sequence[ReferralNews]) -> KnownReferral:
    """``known`` with a run of events' news merged in, one after another."""
    for item in news:
        known = merge_news(known, item)
    return known


def referral_decided(status: str | None, provider_id: uuid.UUID | None) -> bool:
    """Has casework heard enough about a referral to answer an attachment for it?"""
    return provider_id is not None or REFERRAL_STAGE.get(status or "received", 0) > 0


@dataclass(frozen=True)
class ReferralFacts:
    referral_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID | None
    status: str
    referred_on: date


@dataclass(frozen=True)
class Attachment:
    """What a provider asks for when it attaches someone (and what a retry must repeat)."""

    referral_id: uuid.UUID
    attached_on: date
    key_worker: str


@dataclass(frozen=True)
class ExistingParticipant:
    participant_id: uuid.UUID
    provider_id: uuid.UUID
    attachment: Attachment


class AttachmentState(StrEnum):
    """Where casework's request to referrals to attach a referral stands."""

    REQUESTED = "requested"  # asked; referrals has not answered yet
    GRANTED = "granted"  # the referral is attached and the participant created
    REFUSED = "refused"  # withdrawn or declined before referrals could attach it


@dataclass(frozen=True)
class AttachmentRequest:
    """An attachment casework has asked referrals for (one a referral, ever)."""

    provider_id: uuid.UUID
    attachment: Attachment
    state: AttachmentState
    refused_as: str | None = None  # the referral's status when referrals refused


class AttachmentOutcome(StrEnum):
    REQUEST = "request"  # ask referrals, then wait for its answer
    AWAIT = "await"  # the same attachment is already asked for: wait for its answer
    ALREADY_ATTACHED = "already_attached"  # the same attachment again: 200
    NOT_FOUND = "not_found"  # 404: not routed to this provider, or never routed
    CONFLICT = "conflict"  # 409
    INVALID = "invalid"  # 422


@dataclass(frozen=True)
class AttachmentDecision:
    outcome: AttachmentOutcome
    detail: str = ""
    field: str | None = None


def not_attachable(status: str) -> AttachmentDecision:
    """The 409 for a referral no longer ``accepted`` (``status`` is what it became)."""
    return AttachmentDecision(
        AttachmentOutcome.CONFLICT,
        f"The referral is {status}; only an accepted referral can be attached.",
    )


def decide_attachment(
    provider_id: uuid.UUID,
    request: Attachment,
    referral: ReferralFacts | None,
    existing: ExistingParticipant | None,
    asked: AttachmentRequest | None = None,
) -> AttachmentDecision:
    """Contract §3: may this provider attach this referral, and how is it answered?

    ``asked`` is the attachment already asked of referrals, if any: referrals' answer,
    not casework's copy of the referral, settles a race with a withdrawal."""
    if referral is None or referral.provider_id != provider_id:
        return AttachmentDecision(AttachmentOutcome.NOT_FOUND, "No such referral.")
    if existing is not None:
        if existing.provider_id == provider_id and existing.attachment == request:
            return AttachmentDecision(AttachmentOutcome.ALREADY_ATTACHED)
        return AttachmentDecision(
            AttachmentOutcome.CONFLICT,
            "This referral is already attached with a different attached_on or key_worker.",
        )
    if asked is not None:
        if asked.state is AttachmentState.REFUSED:
            return not_attachable(asked.refused_as or referral.status)
        if asked.provider_id == provider_id and asked.attachment == request:
            return AttachmentDecision(AttachmentOutcome.AWAIT)
        return AttachmentDecision(
            AttachmentOutcome.CONFLICT,
            "This referral is being attached with a different attached_on or key_worker.",
        )
    if referral.status != "accepted":
        return not_attachable(referral.status)
    if request.attached_on < referral.referred_on:
        return AttachmentDecision(
            AttachmentOutcome.INVALID,
            f"must be on or after the referral's referred_on ({referral.referred_on})",
            field="attached_on",
        )
    return AttachmentDecision(AttachmentOutcome.REQUEST)


def exit_conflict(
    status: str, left_on: date | None, reason: str | None, new_left_on: date, new_reason: str
) -> str | None:
    """``None`` when the exit may be recorded (or is a retry of the recorded one)."""
    if status != ParticipantStatus.EXITED:
        return None
    if left_on == new_left_on and reason == new_reason:
        return None
    return f"The participant already left on {left_on} ({reason})."


def after_exit(left_on: date | None, day: date) -> bool:
    """Casework dated after the participant left belongs to no one's caseload."""
    return left_on is not None and day > left_on


# --- barrier assessments -----------------------------------------------------------


class AssessmentKind(StrEnum):
    INITIAL = "initial"
    REVIEW = "review"
    EXIT = "exit"


BARRIER_KEYS: tuple[str, ...] = BARRIERS
MIN_SCORE, MAX_SCORE = 0, 6
SEVERE_SCORE = 4  # 4, 5 and 6 count as severe
MIN_WELLBEING, MAX_WELLBEING = 14, 70  # WEMWBS


def severe_barriers(barriers: Mapping[str, int]) -> list[str]:
    return sorted(key for key, score in barriers.items() if score >= SEVERE_SCORE)


# --- employment --------------------------------------------------------------------

MAX_HOURS_PER_WEEK = 168


def end_conflict(current_end: date | None, new_end: date) -> str | None:
    """Ending an ended episode again is a retry only if the date is the same."""
    if current_end is None or current_end == new_end:
        return None
    return f"The episode already ended on {current_end}."


# --- sessions ----------------------------------------------------------------------


class SessionKind(StrEnum):
    ONE_TO_ONE = "one_to_one"
    GROUP = "group"
    PHONE = "phone"
    VIDEO = "video"
    IN_WORK_SUPPORT = "in_work_support"


class Attendance(StrEnum):
    ATTENDED = "attended"
    DID_NOT_ATTEND = "did_not_attend"
    CANCELLED = "cancelled"


SyncStatus = Literal["created", "updated", "unchanged", "stale", "error"]


class SessionRecord(NamedTuple):
    """One session, as a CRM sends it and as it is stored (the table's columns, in
    order); ``modified_at`` is the CRM's own last-modified time.

    A named tuple rather than a dataclass: a sync makes a thousand per call, and
    tuples are the cheapest immutable records Python builds.
    """

    external_id: str
    participant_id: uuid.UUID
    occurred_at: datetime
    kind: str
    duration_minutes: int | None
    attendance: str
    notes: str | None
    modified_at: datetime

    def same_content(self, other: SessionRecord) -> bool:
        # Every field between the key and modified_at; aware datetimes compare as
        # instants, so the same moment written with +01:00 or Z is the same content.
        return self[1:7] == other[1:7]


def sync_status(stored: SessionRecord | None, incoming: SessionRecord) -> SyncStatus:
    """Last modified wins (contract §3)."""
    if stored is None:
        return "created"
    if incoming.modified_at < stored.modified_at:
        return "stale"
    if incoming.modified_at == stored.modified_at and incoming.same_content(stored):
        return "unchanged"
    return "updated"


class InvalidItem(NamedTuple):
    """An item of a sync that is not a session at all, and why."""

    external_id: str | None
    error: str


IncomingSession = SessionRecord | InvalidItem


@dataclass(frozen=True)
class ParticipantScope:
    """What a session item is checked against: whose participant, and their dates."""

    provider_id: uuid.UUID
    referred_on: date
    left_on: date | None

    def window(self) -> tuple[datetime, datetime | None]:
        """The instants a session of this participant may fall between: from the start
        of the referral day to the end of the exit day, UK time (end ``None``: open)."""
        start = datetime.combine(self.referred_on, time(), UK)
        if self.left_on is None:
            return start, None
        return start, datetime.combine(self.left_on + timedelta(days=1), time(), UK)


class ItemResult(NamedTuple):
    external_id: str | None
    status: SyncStatus
    error: str | None = None


@dataclass
class SyncPlan:
    results: list[ItemResult] = field(default_factory=list)
    # The final state of every session the batch changes, keyed by external_id.
    writes: dict[str, SessionRecord] = field(default_factory=dict)
    # Keys this batch creates: nothing was stored under them when it looked.
    created: set[str] = field(default_factory=set)


def session_problem(
    record: SessionRecord, scope: ParticipantScope | None, provider_id: uuid.UUID, now: datetime
) -> str | None:
    """Why a well-formed session cannot be stored for this provider (or ``None``)."""
    if scope is None or scope.provider_id != provider_id:
        # Never reveal that another provider's participant exists (contract §1).
        return "participant_id: no such participant"
    return _date_problem(record, scope.window(), scope, now + CLOCK_SKEW)


def _outside_utc_calendar(moment: datetime) -> bool:
    """Python, and so the database driver, holds years 1 to 9999 only: at either end
    of that calendar a UTC offset can carry a time past the edge, and it cannot be
    stored. (Any other year is far enough from the edges.)"""
    if 1 < moment.year < 9999:
        return False
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return True
    return False


def _date_problem(
    record: SessionRecord,
    window: tuple[datetime, datetime | None],
    scope: ParticipantScope,
    latest: datetime,
) -> str | None:
    for name, moment in (("occurred_at", record.occurred_at), ("modified_at", record.modified_at)):
        if _outside_utc_calendar(moment):
            return f"{name}: must fall within the years 0001 to 9999 in UTC"
    if record.modified_at > latest:
        return "modified_at: is in the future"
    if record.attendance != Attendance.CANCELLED and record.occurred_at > latest:
        return "occurred_at: an attended or missed session cannot be in the future"
    start, end = window
    if record.occurred_at < start:
        return f"occurred_at: is before the referral date ({scope.referred_on})"
    if end is not None and record.occurred_at >= end:
        return f"occurred_at: is after the participant left ({scope.left_on})"
    return None


def plan_session_sync(
    items: Sequence[IncomingSession],
    stored: Mapping[str, SessionRecord],
    participants: Mapping[uuid.UUID, ParticipantScope],
    provider_id: uuid.UUID,
    now: datetime,
) -> SyncPlan:
    """Each item's status, in order, and the rows to write.

    Items are applied in order, so a later item with the same ``external_id`` is judged
    against the earlier one; only the last state of each key is written.
    """
    plan = SyncPlan()
    current: dict[str, SessionRecord] = dict(stored)
    latest = now + CLOCK_SKEW
    windows: dict[uuid.UUID, tuple[datetime, datetime | None]] = {}
    for item in items:
        if isinstance(item, InvalidItem):
            plan.results.append(ItemResult(item.external_id, "error", item.error))
            continue
        record = item
        external_id = record.external_id
        scope = participants.get(record.participant_id)
        if scope is None or scope.provider_id != provider_id:
            problem: str | None = "participant_id: no such participant"
        else:
            window = windows.get(record.participant_id)
            if window is None:
                window = windows[record.participant_id] = scope.window()
            problem = _date_problem(record, window, scope, latest)
        if problem is not None:
            plan.results.append(ItemResult(external_id, "error", problem))
            continue
        status = sync_status(current.get(external_id), record)
        plan.results.append(ItemResult(external_id, status))
        if status == "created" or status == "updated":
            current[external_id] = record
            plan.writes[external_id] = record
            if external_id not in stored:
                plan.created.add(external_id)
    return plan


# --- caseload ----------------------------------------------------------------------


def days_without_contact(last_attended_at: datetime | None, attached_on: date, today: date) -> int:
    """Whole days since the last attended session (or, before any, since attachment:
    the attachment is itself a meeting)."""
    last = uk_date(last_attended_at) if last_attended_at is not None else attached_on
    last = max(last, attached_on)
    return max(0, (today - last).days)


def lacks_contact(days: int, threshold_days: int) -> bool:
    """Flag someone with no attended contact for ``threshold_days`` days or more."""
    return days >= threshold_days
