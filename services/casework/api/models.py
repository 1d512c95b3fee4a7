"""Request and response bodies of the casework routes (contract §3).

Requests refuse unknown fields (``422`` naming them): a misspelt field from a CRM
would otherwise be dropped without anyone noticing.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    create_model,
)
from pydantic_core import core_schema

from services.casework.domain import (
    BARRIER_KEYS,
    MAX_HOURS_PER_WEEK,
    MAX_SCORE,
    MAX_WELLBEING,
    MIN_SCORE,
    MIN_WELLBEING,
    AssessmentKind,
    ExitReason,
)


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (which a
# JSON "\ud800" escape can produce): refuse both as field errors, not 500s.
NO_NUL = r"^[^\x00]*$"


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _strip(value: str) -> str:
    return value.strip()


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


# A name typed by a person: surrounding spaces trimmed, something left.
Label = Annotated[
    StrictStr,
    AfterValidator(_storable),
    AfterValidator(_strip),
    AfterValidator(_not_blank),
    Field(max_length=200),
]


class IsoTimestamp:
    """An ISO 8601 timestamp with a UTC offset, as text.

    Pydantic alone would also take numbers, and strings of digits, as Unix times. The
    check is a pattern on the text, then pydantic's own parsing: all in its core, no
    Python per value (a sync parses 2,000 of these), and the same on JSON text as on
    parsed JSON.
    """

    PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}"
    MESSAGE = "must be an ISO 8601 timestamp with a UTC offset"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.str_schema(pattern=cls.PATTERN, strict=True),
                core_schema.datetime_schema(tz_constraint="aware"),
            ]
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


Timestamp = Annotated[datetime, IsoTimestamp]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    # Only YYYY-MM-DD: pydantic alone would also read numbers (and strings of digits)
    # as Unix times, and accept a datetime at midnight.
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date, YYYY-MM-DD")


Day = Annotated[date, BeforeValidator(_iso_date)]


# --- participants ------------------------------------------------------------------


class AttachmentIn(Request):
    referral_id: uuid.UUID
    attached_on: Day
    key_worker: Label


class KeyWorkerIn(Request):
    key_worker: Label
    # The first day the new key worker holds the case (default: today, UK time).
    assigned_on: Day | None = None


class ExitIn(Request):
    left_on: Day
    reason: ExitReason


class EpisodeOut(BaseModel):
    id: uuid.UUID
    employer: str
    started_on: date
    ended_on: date | None
    hours_per_week: float
    weekly_earnings_pence: int | None
    self_employed: bool


class PersonOut(BaseModel):
    """The referred person, as the referrer sent it (the owning provider only)."""

    given_name: str
    family_name: str
    date_of_birth: date
    nino: str | None = None
    postcode: str
    local_authority: str
    gender: str | None = None
    disability: bool | None = None
    phone: str | None = None


class KeyWorkerAssignment(BaseModel):
    key_worker: str
    assigned_on: date


class ParticipantOut(BaseModel):
    id: uuid.UUID
    referral_id: uuid.UUID
    programme: str
    provider_id: uuid.UUID
    attached_on: date
    key_worker: str
    status: Literal["active", "exited"]
    employment: list[EpisodeOut]
    left_on: date | None
    exit_reason: ExitReason | None = None
    referred_on: date
    person: PersonOut | None = None
    key_worker_history: list[KeyWorkerAssignment] | None = None
    created_at: datetime
    updated_at: datetime


class LastSession(BaseModel):
    """The participant's latest attended session (its notes stay on the session list)."""

    external_id: str
    occurred_at: datetime
    kind: str
    duration_minutes: int | None


class CaseloadEntry(ParticipantOut):
    last_attended_at: datetime | None = Field(
        description="When the participant last attended a session (null: never)."
    )
    last_attended_session: LastSession | None
    days_without_contact: int = Field(
        description="Whole days since the last attended session, or since attachment."
    )
    no_recent_contact: bool | None = Field(
        description="With no_contact_days=N: no attended contact for N days or more."
    )


class ParticipantPage(BaseModel):
    items: list[CaseloadEntry]
    next_cursor: str | None


# --- assessments -------------------------------------------------------------------

Score = Annotated[StrictInt, Field(ge=MIN_SCORE, le=MAX_SCORE)]

# One optional field per barrier key of the contract; a key sent with `null` is refused
# (a barrier not scored is left out, contract §3), an unknown key is `barriers.<key>`.
Barriers = create_model(  # type: ignore[call-overload]
    "Barriers",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Scores 0 (no impact) to 6 (severe impact); only the barriers scored.",
    **{key: (Score, None) for key in BARRIER_KEYS},
)


class AssessmentIn(Request):
    assessed_on: Day
    kind: AssessmentKind
    barriers: Barriers  # type: ignore[valid-type]
    wellbeing: Annotated[StrictInt, Field(ge=MIN_WELLBEING, le=MAX_WELLBEING)] | None = None

    def scores(self) -> dict[str, int]:
        return self.barriers.model_dump(exclude_unset=True)  # type: ignore[attr-defined]


class AssessmentOut(BaseModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    kind: AssessmentKind
    assessed_on: date
    barriers: dict[str, int]
    wellbeing: int | None
    severe_barriers: list[str] = Field(description="The barriers scored 4 to 6.")
    created_at: datetime


class AssessmentList(BaseModel):
    items: list[AssessmentOut]


# --- employment --------------------------------------------------------------------


class EpisodeIn(Request):
    employer: Label
    started_on: Day
    hours_per_week: Annotated[float, Field(gt=0, le=MAX_HOURS_PER_WEEK, strict=True)]
    weekly_earnings_pence: Annotated[StrictInt, Field(ge=0, le=10**9)] | None = None
    self_employed: StrictBool = False
    # A job that has already ended can be recorded in one call.
    ended_on: Day | None = None


class EpisodeEndIn(Request):
    ended_on: Day


# --- sessions ----------------------------------------------------------------------


# Plain strings (Literal), not enums: a sync builds 2,000 of these per call.
SessionKindName = Literal["one_to_one", "group", "phone", "video", "in_work_support"]
AttendanceName = Literal["attended", "did_not_attend", "cancelled"]


class SessionIn(Request):
    """One session of a sync. Every field type is strict on its own (no coercion of
    strings to numbers and the like), so validating JSON text and validating parsed
    JSON give the same answer; the sync relies on that."""

    # Pattern checks run in pydantic's core: cheap enough for 2,000 strings a call.
    # Pydantic's strings refuse lone surrogates (as JSON text and as parsed JSON), so
    # NUL is the one thing to catch.
    external_id: Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NO_NUL)]
    participant_id: uuid.UUID
    occurred_at: Timestamp
    kind: SessionKindName
    duration_minutes: Annotated[StrictInt, Field(ge=0, le=1440)] | None = None
    attendance: AttendanceName
    modified_at: Timestamp
    notes: Annotated[StrictStr, Field(max_length=10_000, pattern=NO_NUL)] | None = None


class SessionsIn(BaseModel):
    """The bulk body. The route validates it in one pass when it is entirely valid,
    and item by item otherwise (one bad item never fails the batch)."""

    sessions: Annotated[list[SessionIn], Field(max_length=1000)]


class SessionOut(BaseModel):
    external_id: str
    participant_id: uuid.UUID
    occurred_at: datetime
    kind: SessionKindName
    duration_minutes: int | None
    attendance: AttendanceName
    modified_at: datetime
    notes: str | None


class SessionList(BaseModel):
    items: list[SessionOut]


class SyncResult(BaseModel):
    external_id: str | None
    status: Literal["created", "updated", "unchanged", "stale", "error"]
    error: str | None


class SyncResults(BaseModel):
    results: list[SyncResult]


# --- errors, for the OpenAPI document ----------------------------------------------
