"""The records a story is made of: people, referrals, participants, their
assessments, jobs, claims and sessions, and the story itself. Plain data; the
generator (:mod:`pathways.simulate.story`) fills them in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pathways.simulate.rules import SEVERE_SCORE, Span, add_months, quarter_start

BARRIERS: tuple[str, ...] = (
    "physical_health",
    "mental_health",
    "substance_misuse",
    "housing",
    "debt",
    "qualifications_skills",
    "work_experience",
    "confidence",
    "digital_skills",
    "childcare",
    "caring_responsibilities",
    "public_transport",
    "private_transport",
    "convictions",
    "bereavement",
    "family_support",
    "relationship_breakdown",
    "chaotic_lifestyle",
    "local_labour_market",
    "age",
)

# Share of participants rating each barrier severe at the initial assessment. The top


@dataclass(frozen=True)
class Timeline:
    """The programme's dates, placed so every quarterly cohort has had 24 months by
    ``as_of``: two years of referrals ending at least 26 months before it."""

    as_of: date
    first_referral_day: date
    last_referral_day: date
    latest_attachment: date

    @classmethod
    def ending_before(cls, as_of: date) -> Timeline:
        limit = add_months(as_of, -26)
        last = quarter_start(limit + timedelta(days=1)) - timedelta(days=1)
        first = add_months(last + timedelta(days=1), -24)
        return cls(as_of, first, last, add_months(as_of, -24))

    def quarter(self, index: int) -> tuple[date, date]:
        start = add_months(self.first_referral_day, 3 * index)
        return start, add_months(start, 3) - timedelta(days=1)


# --- the story's records ---------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    number: int
    given_name: str
    family_name: str
    date_of_birth: date
    nino: str | None
    postcode: str
    local_authority: str
    gender: str | None
    disability: bool | None
    phone: str | None
    benefit: str
    months_out_of_work: int | None
    criminal_justice: str | None
    treatment: str | None


@dataclass
class Referral:
    key: str
    person: Person
    referrer: str  # partner handle
    source: str  # jcp | probation | treatment | self
    external_ref: str
    referred_on: date
    wave: int  # 1: first referral, 2: a second referrer's (duplicate), 3: re-referral
    decision: str  # accepted | rejected | duplicate
    reasons: tuple[str, ...] = ()
    provider: str | None = None
    duplicate_of: str | None = None
    fate: str | None = None  # attached | declined | withdrawn | None (stays accepted)
    # How this referrer writes the person (a second referrer may differ in form).
    sent_nino: str | None = None
    sent_postcode: str = ""
    sent_family_name: str = ""
    criminal_justice: str | None = None
    treatment: str | None = None
    notes: str | None = None
    mistakes: tuple[str, ...] = ()  # typo_nino, retry, withdraw_after_attach

    @property
    def final_status(self) -> str:
        if self.decision != "accepted":
            return self.decision
        return self.fate or "accepted"

    def body(self, programme: str, *, nino: str | None = None) -> dict[str, Any]:
        p = self.person
        person: dict[str, Any] = {
            "given_name": p.given_name,
            "family_name": self.sent_family_name,
            "date_of_birth": p.date_of_birth.isoformat(),
            "postcode": self.sent_postcode,
            "local_authority": p.local_authority,
        }
        sent_nino = nino if nino is not None else self.sent_nino
        if sent_nino is not None:
            person["nino"] = sent_nino
        if p.gender is not None:
            person["gender"] = p.gender
        if p.disability is not None:
            person["disability"] = p.disability
        if p.phone is not None:
            person["phone"] = p.phone
        circumstances: dict[str, Any] = {"benefit": p.benefit}
        if p.months_out_of_work is not None:
            circumstances["months_out_of_work"] = p.months_out_of_work
        if self.criminal_justice is not None:
            circumstances["criminal_justice"] = self.criminal_justice
        if self.treatment is not None:
            circumstances["treatment"] = self.treatment
        body: dict[str, Any] = {
            "external_ref": self.external_ref,
            "programme": programme,
            "referred_on": self.referred_on.isoformat(),
            "person": person,
            "circumstances": circumstances,
            "consent": {"given": True, "recorded_on": self.referred_on.isoformat()},
        }
        if self.notes:
            body["notes"] = self.notes
        return body


@dataclass(frozen=True)
class Refusal:
    """A referral sent without the person's consent: refused (422), nothing stored."""

    referrer: str
    referral: Referral

    def body(self, programme: str) -> dict[str, Any]:
        body = self.referral.body(programme)
        body["consent"] = {"given": False}
        return body


@dataclass(frozen=True)
class Assessment:
    kind: str  # initial | review | exit
    assessed_on: date
    barriers: dict[str, int]
    wellbeing: int | None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "assessed_on": self.assessed_on.isoformat(),
            "kind": self.kind,
            "barriers": dict(self.barriers),
        }
        if self.wellbeing is not None:
            body["wellbeing"] = self.wellbeing
        return body

    def severe(self) -> set[str]:
        return {b for b, s in self.barriers.items() if s >= SEVERE_SCORE}


@dataclass(frozen=True)
class Episode:
    employer: str
    started_on: date
    ended_on: date | None
    hours_per_week: float
    weekly_earnings_pence: int
    self_employed: bool

    def body(self) -> dict[str, Any]:
        return {
            "employer": self.employer,
            "started_on": self.started_on.isoformat(),
            "hours_per_week": self.hours_per_week,
            "weekly_earnings_pence": self.weekly_earnings_pence,
            "self_employed": self.self_employed,
        }

    def span(self) -> Span:
        return Span(self.started_on, self.ended_on)


@dataclass(frozen=True)
class Evidence:
    kind: str
    reference: str
    dated: date

    def body(self) -> dict[str, Any]:
        return {"kind": self.kind, "reference": self.reference, "dated": self.dated.isoformat()}


@dataclass
class Claim:
    key: str
    round: int  # 1 or 2 (after the programme office's first review round)
    type: str
    achieved_on: date
    episode: int | None  # index into the participant's episodes
    evidence: tuple[Evidence, ...]
    claimant: str  # the provider posting it
    review_decision: str | None = None  # validate | reject, if it goes to review
    intent: str = "validated"  # what the story means: validated, review, or a rule's name
    # Filled in by judge_claims: the rules' decision, and the final status.
    decision: str = ""
    reasons: tuple[str, ...] = ()
    final: str = ""


@dataclass(frozen=True)
class SessionVersion:
    external_id: str
    participant: str  # participant key
    occurred_at: datetime
    kind: str
    duration_minutes: int | None
    attendance: str
    modified_at: datetime
    notes: str | None

    def content(self) -> tuple[Any, ...]:
        return (
            self.participant,
            self.occurred_at,
            self.kind,
            self.duration_minutes,
            self.attendance,
            self.notes,
        )


@dataclass(frozen=True)
class SyncItem:
    version: SessionVersion
    expected: str  # created | updated | unchanged | stale | error


@dataclass
class Participant:
    key: str
    referral: Referral
    provider: str
    attached_on: date
    key_worker: str
    assessments: list[Assessment]  # initial first, then reviews/exit in date order
    episodes: list[Episode] = field(default_factory=list)
    exit: tuple[date, str] | None = None
    sessions: list[SessionVersion] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    mistakes: tuple[str, ...] = ()  # retry_attach, wrong_provider_attach, bad_score, ...

    @property
    def initial(self) -> Assessment:
        return self.assessments[0]

    def spans(self) -> list[Span]:
        return [e.span() for e in self.episodes]


@dataclass
class Story:
    people: int
    seed: int
    timeline: Timeline
    persons: list[Person]
    referrals: list[Referral]
    refusals: list[Refusal]
    participants: list[Participant]
    # provider handle -> the CRM's sync calls, in order (each at most 1,000 items)
    syncs: dict[str, list[list[SyncItem]]]

    @property
    def as_of(self) -> date:
        return self.timeline.as_of

    def referrals_in_wave(self, wave: int) -> list[Referral]:
        return [r for r in self.referrals if r.wave == wave]

    def claims(self) -> Iterator[tuple[Participant, Claim]]:
        for participant in self.participants:
            for claim in participant.claims:
                yield participant, claim

    def participant_by_key(self) -> dict[str, Participant]:
        return {p.key: p for p in self.participants}


# --- building it -------------------------------------------------------------------------
