"""The referrals service's rules (contract §2): plain functions and dataclasses, no I/O."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

UK = ZoneInfo("Europe/London")


class Status(StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    ATTACHED = "attached"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class Reason(StrEnum):
    """Why a referral was rejected; listed in this order (contract §2.1)."""

    BENEFIT_NOT_ELIGIBLE = "benefit_not_eligible"
    AGE_OUT_OF_RANGE = "age_out_of_range"
    OUTSIDE_AREA = "outside_area"
    UNKNOWN_PROGRAMME = "unknown_programme"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    NOT_STATED = "not_stated"


class Benefit(StrEnum):
    ESA = "ESA"
    JSA = "JSA"
    UC = "UC"
    IS = "IS"
    PIP = "PIP"
    NONE = "none"


class CriminalJustice(StrEnum):
    NONE = "none"
    COMMUNITY_ORDER = "community_order"
    LICENCE = "licence"
    RELEASED_FROM_CUSTODY = "released_from_custody"


class Treatment(StrEnum):
    NONE = "none"
    IN_TREATMENT = "in_treatment"
    COMPLETED_TREATMENT = "completed_treatment"


SELF_SOURCE = "self"

# A referral in one of these still stands for its person: a new referral of the same
# person in the same programme is a duplicate of it (contract §2.1).
LIVE_STATUSES: frozenset[Status] = frozenset({Status.RECEIVED, Status.ACCEPTED, Status.ATTACHED})
# Withdraw and decline are allowed only from these (contract §2).
OPEN_STATUSES: frozenset[Status] = frozenset({Status.RECEIVED, Status.ACCEPTED})

OLDEST_AGE_YEARS = 120


def today_uk(now: datetime | None = None) -> date:
    """Today's date in the UK: what "today" means to partners, whatever the server's zone."""
    return (now.astimezone(UK) if now is not None else datetime.now(UK)).date()


# --- text --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A JSON "\ud800" escape decodes to a lone surrogate, which UTF-8 (and so PostgreSQL and
# orjson) cannot hold: refuse it as a field error, not a 500.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"\s+")


def _unicode_text(value: str, control: re.Pattern[str]) -> str:
    """NFC-normalised text, refusing lone surrogates and the given control characters.

    NFC makes "é" typed two ways the same text, so matching and idempotency agree.
    Control characters are refused (PostgreSQL cannot even store NUL).
    """
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode text")
    value = unicodedata.normalize("NFC", value)
    if control.search(value):
        raise ValueError("must not contain control characters")
    return value


def clean_line(value: str) -> str:
    """One line of text (names, places): trimmed, inner runs of spaces made one."""
    return _SPACES.sub(" ", _unicode_text(value, _CONTROL)).strip()


def clean_ref(value: str) -> str:
    """A partner's identifier: trimmed only, so "A  X" and "A X" stay two refs."""
    return _unicode_text(value, _CONTROL).strip()


def clean_text(value: str) -> str:
    """Free text (notes, reasons): trimmed, line breaks and tabs kept."""
    return _unicode_text(value, _CONTROL_EXCEPT_LINES).strip()


# --- National Insurance numbers and postcodes ---------------------------------------------

_NINO_FIRST = set("ABCEGHJKLMNOPRSTWXYZ")  # not D, F, I, Q, U, V
_NINO_SECOND = set("ABCEGHJKLMNPRSTWXYZ")  # not D, F, I, O, Q, U, V
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_NINO_SHAPE = re.compile(r"[A-Z]{2}[0-9]{6}[A-D]")


def _compact_ascii(raw: str, what: str) -> str:
    """Spaces removed and upper-cased, refusing anything but ASCII first.

    ASCII is checked before upper() because upper() maps some other letters onto
    ASCII ones (the ligature U+FB06 becomes "ST", a dotless i becomes "I"). Only the
    space is removed: the regex class \\s would also swallow control characters.
    """
    if not raw.isascii():
        raise ValueError(f"must be {what}, in plain letters and digits")
    return raw.replace(" ", "").upper()


def normalise_nino(raw: str) -> str:
    """Upper case without spaces, checked against the contract's letter rules (§2)."""
    nino = _compact_ascii(raw, "a National Insurance number")
    if not _NINO_SHAPE.fullmatch(nino):
        raise ValueError(
            "must be a National Insurance number: two letters, six digits and A, B, C or D"
        )
    if nino[0] not in _NINO_FIRST:
        raise ValueError("is not a valid National Insurance number: first letter not allowed")
    if nino[1] not in _NINO_SECOND:
        raise ValueError("is not a valid National Insurance number: second letter not allowed")
    if nino[:2] in _NINO_BAD_PREFIXES:
        raise ValueError("is not a valid National Insurance number: prefix not allowed")
    return nino


# Outward code (A9, A99, AA9, AA99, A9A, AA9A), then the inward code (9AA).
_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})")


def normalise_postcode(raw: str) -> str:
    """A UK postcode in its canonical form: upper case, one space before the inward code."""
    compact = _compact_ascii(raw, "a UK postcode")
    match = _POSTCODE.fullmatch(compact)
    if not match:
        raise ValueError("must be a UK postcode, like WN1 1AA")
    return f"{match.group(1)} {match.group(2)}"


def postcode_key(postcode: str) -> str:
    """Postcodes compare ignoring spaces and case (contract §2.1)."""
    return re.sub(r"\s+", "", postcode).upper()


def name_key(family_name: str) -> str:
    """Family names compare case-insensitively (contract §2.1); casefold handles ß/ss."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", family_name)).strip().casefold()


_PHONE = re.compile(r"\+?[0-9 ()\-]+")


def check_phone(raw: str) -> str:
    if not _PHONE.fullmatch(raw) or not 7 <= sum(c.isdigit() for c in raw) <= 15:
        raise ValueError("must be a phone number: 7 to 15 digits, with optional +, spaces, ( ) -")
    return raw


# --- dates and ages ------------------------------------------------------------------------


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years completed on ``on``. Someone born on 29 February turns a year older on
    1 March in a common year, as in UK law."""
    before_birthday = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - int(before_birthday)


def age_band(age: int) -> str | None:
    """Reporting's age bands; ``None`` under 18."""
    if age < 18:
        return None
    if age <= 24:
        return "18-24"
    if age <= 34:
        return "25-34"
    if age <= 49:
        return "35-49"
    return "50+"


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def date_problems(
    *,
    referred_on: date,
    date_of_birth: date,
    consent_recorded_on: date | None,
    today: date,
) -> list[tuple[str, str]]:
    """Date rules that need more than one field, as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if referred_on > today:
        problems.append(("referred_on", "must not be in the future (UK date)"))
    if date_of_birth > today:
        problems.append(("person.date_of_birth", "must not be in the future"))
    elif date_of_birth < years_before(today, OLDEST_AGE_YEARS):
        problems.append(("person.date_of_birth", f"must be less than {OLDEST_AGE_YEARS} years ago"))
    elif date_of_birth >= referred_on:
        problems.append(("person.date_of_birth", "must be before referred_on"))
    if consent_recorded_on is not None and consent_recorded_on > today:
        problems.append(("consent.recorded_on", "must not be in the future (UK date)"))
    return problems


# --- programmes, eligibility and routing -----------------------------------------------------


def area_key(local_authority: str) -> str:
    """Local authorities match ignoring case and spacing ("wigan" is Wigan)."""
    return name_key(local_authority)


@dataclass(frozen=True)
class ProgrammeRules:
    """What intake needs of a programme definition (contract §1). Never changes."""

    code: str
    eligible_benefits: frozenset[str]
    min_age: int
    max_age: int
    # area_key(local authority) -> the one provider covering it
    areas: Mapping[str, uuid.UUID]

    @classmethod
    def from_definition(
        cls,
        *,
        code: str,
        eligible_benefits: Iterable[str],
        min_age: int,
        max_age: int,
        providers: Iterable[tuple[uuid.UUID, Iterable[str]]],
    ) -> ProgrammeRules:
        areas: dict[str, uuid.UUID] = {}
        for provider_id, local_authorities in providers:
            for local_authority in local_authorities:
                # The gateway refuses a definition listing an area twice; if one ever
                # got through, the first provider named keeps it.
                areas.setdefault(area_key(local_authority), provider_id)
        return cls(code, frozenset(eligible_benefits), min_age, max_age, areas)

    def provider_for(self, local_authority: str) -> uuid.UUID | None:
        return self.areas.get(area_key(local_authority))


@dataclass(frozen=True)
class Eligibility:
    reasons: tuple[Reason, ...]
    provider_id: uuid.UUID | None

    @property
    def eligible(self) -> bool:
        return not self.reasons


def assess(
    rules: ProgrammeRules,
    *,
    benefit: str,
    date_of_birth: date,
    referred_on: date,
    local_authority: str,
) -> Eligibility:
    """Every failing eligibility rule, in the contract's order, and the routed provider."""
    reasons: list[Reason] = []
    if benefit not in rules.eligible_benefits:
        reasons.append(Reason.BENEFIT_NOT_ELIGIBLE)
    if not rules.min_age <= age_on(date_of_birth, referred_on) <= rules.max_age:
        reasons.append(Reason.AGE_OUT_OF_RANGE)
    provider_id = rules.provider_for(local_authority)
    if provider_id is None:
        reasons.append(Reason.OUTSIDE_AREA)
    return Eligibility(tuple(reasons), provider_id)


@dataclass(frozen=True)
class Outcome:
    """Where a referral goes from ``received``."""

    status: Status
    reasons: tuple[str, ...] = ()
    provider_id: uuid.UUID | None = None
    duplicate_of: uuid.UUID | None = None


def outcome_of(eligibility: Eligibility, duplicate_of: uuid.UUID | None) -> Outcome:
    """Only a referral passing every rule is checked for duplicates (contract §2.1)."""
    if not eligibility.eligible:
        return Outcome(Status.REJECTED, tuple(r.value for r in eligibility.reasons))
    if duplicate_of is not None:
        return Outcome(Status.DUPLICATE, duplicate_of=duplicate_of)
    return Outcome(Status.ACCEPTED, provider_id=eligibility.provider_id)


UNKNOWN_PROGRAMME = Outcome(Status.REJECTED, (Reason.UNKNOWN_PROGRAMME.value,))


# --- the same person -------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonKeys:
    """What identifies a person for the duplicate rule (contract §2.1): the NINO when
    both referrals have one, otherwise family name + date of birth + postcode."""

    programme: str
    nino: str | None
    family_key: str
    date_of_birth: date
    postcode_key: str

    def lock_ids(self) -> list[int]:
        """Advisory lock ids of every key this referral has, in a fixed (sorted) order.

        Two referrals that could be the same person share at least one key: the NINO
        if both have one and it is equal, otherwise the name key. So two deciding
        transactions for the same person always contend for a common lock and run one
        after the other; sorting the ids means two transactions never take the same
        pair in opposite orders (no deadlock).
        """
        keys = [f"name\x1f{self.family_key}\x1f{self.date_of_birth}\x1f{self.postcode_key}"]
        if self.nino:
            keys.append(f"nino\x1f{self.nino}")
        return sorted({lock_id(f"referrals.person\x1f{self.programme}\x1f{k}") for k in keys})


def lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for ``key`` (a hash collision only costs a wait)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def programme_lock_id(code: str) -> int:
    return lock_id(f"referrals.programme\x1f{code}")


# --- idempotency -----------------------------------------------------------------------------


def fingerprint(normalised_request: Mapping[str, Any]) -> str:
    """A canonical digest of a normalised request: equal bodies, equal fingerprints,
    whatever the key order, spacing or letter case partners send."""
    return hashlib.sha256(
        orjson.dumps(normalised_request, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    ).hexdigest()


@dataclass(frozen=True)
class StoredRequest:
    """What idempotency compares a retry against."""

    fingerprint: str
    referred_on: date
    referred_on_defaulted: bool


def is_same_request(
    stored: StoredRequest, *, fingerprint: str, referred_on: date | None, today: date
) -> bool:
    """A retry is the same request if every field matches once normalised.

    ``referred_on`` is compared as the date it means: left out by both the original
    and the retry, it is the original's default (a retry the next day is still a
    retry); left out by the retry only, it means today.
    """
    if fingerprint != stored.fingerprint:
        return False
    if referred_on is None:
        effective = stored.referred_on if stored.referred_on_defaulted else today
    else:
        effective = referred_on
    return effective == stored.referred_on


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    status: Status
    at: datetime
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"status": self.status.value, "at": self.at.isoformat()}
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def history_for(outcome_status: Status | None, at: datetime) -> list[HistoryEntry]:
    """A new referral's history: ``received``, then its decision if made at once."""
    entries = [HistoryEntry(Status.RECEIVED, at)]
    if outcome_status is not None and outcome_status is not Status.RECEIVED:
        entries.append(HistoryEntry(outcome_status, at))
    return entries


@dataclass(frozen=True)
class Transition:
    """A partner's move of a referral: withdraw (its referrer) or decline (its provider)."""

    to: Status
    allowed_from: frozenset[Status] = field(default=OPEN_STATUSES)

    def allowed(self, current: Status) -> bool:
        return current in self.allowed_from


WITHDRAW = Transition(Status.WITHDRAWN)
DECLINE = Transition(Status.DECLINED)

# participant.attached is a fact from casework, not a request. Casework now asks first
# (attachment_requested) and creates the participant only once granted, so it reaches
# an attached referral; an attachment made before casework asked (an event from an
# older version, still in flight) is applied to an accepted referral and also to one
# withdrawn or declined meanwhile (the person *is* attached), so the two services agree.
ATTACHABLE_STATUSES: frozenset[Status] = frozenset(
    {Status.ACCEPTED, Status.WITHDRAWN, Status.DECLINED}
)


def grants_attachment(
    status: Status,
    *,
    routed_to: uuid.UUID | None,
    attached_to: uuid.UUID | None,
    provider_id: uuid.UUID,
    participant_id: uuid.UUID,
) -> bool:
    """Casework asks to attach a referral (contract §3): granted to an accepted referral
    routed to that provider, and again to the participant it was granted to. A referral
    withdrawn or declined first is refused, so a withdrawal that was answered ``200`` is
    never undone by an attachment, nor an attachment answered ``201`` by a withdrawal."""
    if status is Status.ATTACHED:
        return attached_to == participant_id
    return status is Status.ACCEPTED and routed_to == provider_id


# --- a referral as submitted --------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    given_name: str
    family_name: str
    date_of_birth: date
    nino: str | None
    postcode: str  # canonical form, e.g. "WN1 1AA"
    local_authority: str
    gender: str | None
    disability: bool | None
    phone: str | None


@dataclass(frozen=True)
class Circumstances:
    benefit: str
    months_out_of_work: int | None
    criminal_justice: str | None
    treatment: str | None


@dataclass(frozen=True)
class Consent:
    given: bool
    recorded_on: date | None


@dataclass(frozen=True)
class Submission:
    """A referral as a partner posted it, validated and normalised."""

    external_ref: str
    programme: str
    referred_on: date | None  # None: left out, so today (UK)
    person: Person
    circumstances: Circumstances
    consent: Consent
    notes: str | None

    def fingerprint(self) -> str:
        """Idempotency digest of everything but ``referred_on`` (see is_same_request)."""
        return fingerprint(
            {
                "external_ref": self.external_ref,
                "programme": self.programme,
                "person": as_json(self.person),
                "circumstances": as_json(self.circumstances),
                "consent": as_json(self.consent),
                "notes": self.notes,
            }
        )

    def keys(self) -> PersonKeys:
        return PersonKeys(
            programme=self.programme,
            nino=self.person.nino,
            family_key=name_key(self.person.family_name),
            date_of_birth=self.person.date_of_birth,
            postcode_key=postcode_key(self.person.postcode),
        )


def as_json(value: Any) -> Any:
    """A dataclass as plain JSON values (dates as ISO strings)."""
    return orjson.loads(orjson.dumps(value))
