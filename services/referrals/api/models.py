"""Request and response bodies of the referrals routes (contract §2, §7).

Input is strict: JSON types must be what the contract says (``"30"`` is not a number,
``"true"`` is not ``true``), dates are ``YYYY-MM-DD`` strings, text is trimmed,
NFC-normalised and length-limited, and unknown fields are refused (``422``) so that a
misspelt optional field (``"referredOn"``) is reported instead of silently ignored.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from services.referrals.domain import (
    Benefit,
    Circumstances,
    Consent,
    CriminalJustice,
    Gender,
    Person,
    Status,
    Submission,
    Treatment,
    check_phone,
    clean_line,
    clean_ref,
    clean_text,
    normalise_nino,
    normalise_postcode,
)
from services.referrals.store import ReferralRecord

NAME_MAX = 100
REF_MAX = 100
NOTES_MAX = 5000
REASON_MAX = 1000

# No control characters, and at least one character that is not a space.
_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _bounded(max_length: int, clean: Callable[[str], str] = clean_line) -> AfterValidator:
    def check(value: str) -> str:
        value = clean(value)
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return AfterValidator(check)


def _line(max_length: int, clean: Callable[[str], str] = clean_line) -> Any:
    return Annotated[
        str,
        Strict(),
        _bounded(max_length, clean),
        Field(
            json_schema_extra={"minLength": 1, "maxLength": max_length, "pattern": _LINE_PATTERN}
        ),
    ]


def _iso_date_string(value: Any) -> Any:
    # JSON has no date type: only "YYYY-MM-DD" strings (not numbers, not timestamps).
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def _must_be_true(value: bool) -> bool:
    if value is not True:
        raise ValueError("must be true: a referral needs the person's consent")
    return value


Name = _line(NAME_MAX)
Ref = _line(REF_MAX, clean_ref)
IsoDate = Annotated[date, BeforeValidator(_iso_date_string)]
Nino = Annotated[
    str,
    Strict(),
    AfterValidator(normalise_nino),
    Field(
        description="UK National Insurance number; spaces and case are normalised",
        examples=["AB123456C"],
    ),
]
Postcode = Annotated[
    str,
    Strict(),
    AfterValidator(normalise_postcode),
    Field(description="UK postcode; stored as upper case with one space", examples=["WN1 1AA"]),
]
Phone = Annotated[str, Strict(), _bounded(30), AfterValidator(check_phone)]
Notes = Annotated[
    str,
    Strict(),
    AfterValidator(clean_text),
    Field(json_schema_extra={"maxLength": NOTES_MAX}),
]


def _notes_length(value: str | None) -> str | None:
    if value is not None and len(value) > NOTES_MAX:
        raise ValueError(f"must be at most {NOTES_MAX} characters")
    return value or None  # empty notes are no notes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonIn(_Strict):
    given_name: Name
    family_name: Name
    date_of_birth: IsoDate
    nino: Nino | None = None
    postcode: Postcode
    local_authority: Name
    gender: Gender | None = None
    disability: Annotated[bool, Strict()] | None = None
    phone: Phone | None = None


class CircumstancesIn(_Strict):
    benefit: Benefit
    months_out_of_work: Annotated[int, Strict(), Field(ge=0, le=1200)] | None = None
    criminal_justice: CriminalJustice | None = None
    treatment: Treatment | None = None


class ConsentIn(_Strict):
    given: Annotated[bool, Strict(), AfterValidator(_must_be_true)]
    recorded_on: IsoDate | None = None


class ReferralIn(_Strict):
    external_ref: Ref
    programme: Ref
    referred_on: IsoDate | None = Field(
        default=None, description="Defaults to today (UK); may not be in the future"
    )
    person: PersonIn
    circumstances: CircumstancesIn
    consent: ConsentIn
    notes: Annotated[Notes | None, AfterValidator(_notes_length)] = None

    def to_submission(self) -> Submission:
        p, c = self.person, self.circumstances
        return Submission(
            external_ref=self.external_ref,
            programme=self.programme,
            referred_on=self.referred_on,
            person=Person(
                given_name=p.given_name,
                family_name=p.family_name,
                date_of_birth=p.date_of_birth,
                nino=p.nino,
                postcode=p.postcode,
                local_authority=p.local_authority,
                gender=p.gender.value if p.gender else None,
                disability=p.disability,
                phone=p.phone,
            ),
            circumstances=Circumstances(
                benefit=c.benefit.value,
                months_out_of_work=c.months_out_of_work,
                criminal_justice=c.criminal_justice.value if c.criminal_justice else None,
                treatment=c.treatment.value if c.treatment else None,
            ),
            consent=Consent(given=self.consent.given, recorded_on=self.consent.recorded_on),
            notes=self.notes,
        )


class ReasonIn(_Strict):
    reason: Annotated[
        str,
        Strict(),
        _bounded(REASON_MAX, clean_text),
        Field(json_schema_extra={"minLength": 1, "maxLength": REASON_MAX}),
    ]


# --- responses -----------------------------------------------------------------------------


class HistoryOut(BaseModel):
    status: Status
    at: datetime
    reason: str | None = None  # the partner's reason, for withdrawn and declined


class PersonOut(BaseModel):
    given_name: str
    family_name: str
    date_of_birth: date
    nino: str | None
    postcode: str
    local_authority: str
    gender: Gender | None
    disability: bool | None
    phone: str | None


class CircumstancesOut(BaseModel):
    benefit: Benefit
    months_out_of_work: int | None
    criminal_justice: CriminalJustice | None
    treatment: Treatment | None


class ConsentOut(BaseModel):
    given: bool
    recorded_on: date | None


class ReferralOut(BaseModel):
    """The referral (contract §2.1), plus who made it, consent, notes and timestamps."""

    id: uuid.UUID
    external_ref: str
    programme: str
    source: str = Field(description="jcp, probation, treatment, or self (a provider)")
    referrer_id: uuid.UUID
    referred_on: date
    status: Status
    provider_id: uuid.UUID | None
    reasons: list[str]
    duplicate_of: uuid.UUID | None
    history: list[HistoryOut]
    person: PersonOut
    circumstances: CircumstancesOut
    consent: ConsentOut
    notes: str | None
    created_at: datetime
    updated_at: datetime = Field(description="When the status last changed")

    @classmethod
    def of(cls, record: ReferralRecord) -> ReferralOut:
        return cls(
            id=record.id,
            external_ref=record.external_ref,
            programme=record.programme,
            source=record.source,
            referrer_id=record.referrer_id,
            referred_on=record.referred_on,
            status=record.status,
            provider_id=record.provider_id,
            reasons=record.reasons,
            duplicate_of=record.duplicate_of,
            history=[HistoryOut.model_validate(entry) for entry in record.history],
            person=PersonOut.model_validate(record.person),
            circumstances=CircumstancesOut.model_validate(record.circumstances),
            consent=ConsentOut.model_validate(record.consent),
            notes=record.notes,
            created_at=record.received_at,
            updated_at=record.updated_at,
        )


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None
