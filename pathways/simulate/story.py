"""The story of a simulated programme: who is referred, by whom and when, who attaches,
what their barriers are, who finds work and keeps it, what the providers claim.

:func:`build_story` is a pure function of ``(people, seed, as_of)``: the same arguments
give the same story, call for call. Nothing here talks to the platform; the runner
plays the story through the gateway and :mod:`pathways.simulate.expected` computes
from it the figures the reports must then show.

Shapes come from the Working Well Expansion evaluation (SQW, 2018), cited by paragraph:
uneven quarterly volumes (¶3.14), 69% of referrals attaching (¶3.2), the six most common
severe barriers and their improvement at six months (Table 3-2), about 20% of each
quarterly cohort into work within two years (¶3.16), and 44% of starters sustaining
50 weeks (¶3.18). Everything else a real programme has is in there too, because the
demo doubles as a test of the platform: ineligible, duplicate, withdrawn and declined
referrals, people without a National Insurance number, self-referrals, re-sent and
out-of-order session syncs, and claims that fail each of the contract's rules.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from pathways.simulate import people as synth
from pathways.simulate.claims import Claims
from pathways.simulate.draws import Numbers, birth_date, pick
from pathways.simulate.judge import judge_claims
from pathways.simulate.lives import Lives
from pathways.simulate.programme import (
    AREA_SHARE,
    ELIGIBLE_BENEFITS,
    GROWTH,
    INGEUS,
    MAX_AGE,
    MIN_AGE,
    OUTSIDE_AREA_SHARE,
    OUTSIDE_AREAS,
    PROBATION,
    PROVIDER_OF,
    TREATMENT_OF,
    jcp,
)
from pathways.simulate.records import (
    BARRIERS,
    Assessment,
    Claim,
    Episode,
    Evidence,
    Participant,
    Person,
    Referral,
    Refusal,
    SessionVersion,
    Story,
    SyncItem,
    Timeline,
)
from pathways.simulate.rules import age_on
from pathways.simulate.syncs import Syncs

__all__ = [
    "BARRIERS",
    "Assessment",
    "Claim",
    "Episode",
    "Evidence",
    "Participant",
    "Person",
    "Referral",
    "Refusal",
    "SessionVersion",
    "Story",
    "SyncItem",
    "Timeline",
    "build_story",
    "judge_claims",
]

# Referrals per quarter over the two years: a slow start, a peak, a tail (¶3.14).
QUARTER_SHARE = (0.05, 0.09, 0.15, 0.18, 0.16, 0.14, 0.12, 0.11)
# Fates of an accepted referral (calibrated so ~69% of referrals attach, ¶3.2).
ATTACH_SHARE = 0.742
DECLINE_SHARE = 0.193
WITHDRAW_SHARE = 0.045


def _weekday(day: date, first: date, last: date) -> date:
    """Referrals are made on working days: a weekend date moves to the nearest weekday
    inside the quarter."""
    if day.weekday() == 5:
        day -= timedelta(days=1)
    elif day.weekday() == 6:
        day += timedelta(days=1)
    if day > last:
        day -= timedelta(days=3)
    return max(day, first)


def _age(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.004:
        return 17  # too young: age_out_of_range
    if r < 0.008:
        return rng.randint(67, 69)  # over state pension age: age_out_of_range
    years = pick(rng, {(18, 24): 0.12, (25, 34): 0.22, (35, 49): 0.34, (50, 66): 0.32})
    return rng.randint(*years)


REF_PREFIX = {
    PROBATION: "GMPS",
    "treatment:city": "MSRS",
    "treatment:north": "NGMRS",
    "treatment:south": "SGMRS",
    INGEUS: "ING-SR",
    GROWTH: "TGC-SR",
}


class _Builder(Lives, Claims, Syncs):
    def __init__(self, people: int, seed: int, as_of: date) -> None:
        self.rng = random.Random(f"pathways-demo:{seed}:{people}:{as_of.isoformat()}")
        self.people = people
        self.seed = seed
        self.timeline = Timeline.ending_before(as_of)
        self.numbers = Numbers()
        self.ninos: set[str] = set()
        self.identities: set[tuple[str, date, str]] = set()
        self.persons: list[Person] = []
        self.referrals: list[Referral] = []
        self.refusals: list[Refusal] = []
        self.participants: list[Participant] = []

    # --- people and referrals ---------------------------------------------------------

    def external_ref(self, referrer: str) -> str:
        n = self.numbers(f"ref:{referrer}")
        if referrer.startswith("jcp:"):
            area = referrer.removeprefix("jcp:")
            return f"JCP-{area[:3].upper()}-{n:06d}"
        return f"{REF_PREFIX[referrer]}-{n:06d}"

    def person(self, number: int, referred_on: date, area: str, source: str) -> Person:
        rng = self.rng
        gender = pick(
            rng, {"male": 0.55, "female": 0.42, "other": 0.005, "not_stated": 0.015, None: 0.01}
        )
        given = rng.choice(
            synth.GIVEN_NAMES_FEMALE
            if gender == "female"
            else synth.GIVEN_NAMES_MALE
            if gender == "male"
            else synth.GIVEN_NAMES_OTHER
        )
        family = rng.choice(synth.FAMILY_NAMES)
        dob = birth_date(rng, _age(rng), referred_on)
        # The duplicate rule matches people by NINO, or by family name + date of birth +
        # postcode: no two people of the story may share either.
        while True:
            code = synth.postcode(rng, area)
            identity = (family.casefold(), dob, code.replace(" ", ""))
            if identity not in self.identities:
                self.identities.add(identity)
                break
        nino = None
        if rng.random() < 0.92:
            while True:
                nino = synth.random_nino(rng)
                if nino not in self.ninos:
                    self.ninos.add(nino)
                    break
        benefit = pick(
            rng, {"ESA": 0.34, "JSA": 0.29, "UC": 0.27, "IS": 0.06, "PIP": 0.02, "none": 0.02}
        )
        if source == "probation":
            justice = pick(
                rng, {"community_order": 0.45, "licence": 0.35, "released_from_custody": 0.2}
            )
        else:
            justice = pick(rng, {None: 0.4, "none": 0.55, "community_order": 0.03, "licence": 0.02})
        if source == "treatment":
            treatment = pick(rng, {"in_treatment": 0.7, "completed_treatment": 0.3})
        else:
            treatment = pick(
                rng, {None: 0.4, "none": 0.55, "in_treatment": 0.03, "completed_treatment": 0.02}
            )
        months = None
        if rng.random() < 0.9:
            months = min(480, int(rng.expovariate(1 / 40)))
        return Person(
            number=number,
            given_name=given,
            family_name=family,
            date_of_birth=dob,
            nino=nino,
            postcode=code,
            local_authority=area,
            gender=gender,
            disability=pick(rng, {True: 0.38, False: 0.55, None: 0.07}),
            phone=synth.phone(rng) if rng.random() < 0.85 else None,
            benefit=benefit,
            months_out_of_work=months,
            criminal_justice=justice,
            treatment=treatment,
        )

    def eligibility(self, person: Person, on: date) -> tuple[str, ...]:
        reasons = []
        if person.benefit not in ELIGIBLE_BENEFITS:
            reasons.append("benefit_not_eligible")
        if not MIN_AGE <= age_on(person.date_of_birth, on) <= MAX_AGE:
            reasons.append("age_out_of_range")
        if person.local_authority not in PROVIDER_OF:
            reasons.append("outside_area")
        return tuple(reasons)

    def referral(
        self, person: Person, referrer: str, source: str, referred_on: date, wave: int
    ) -> Referral:
        reasons = self.eligibility(person, referred_on)
        n = len(self.referrals) + 1
        referral = Referral(
            key=f"R{n:06d}",
            person=person,
            referrer=referrer,
            source=source,
            external_ref=self.external_ref(referrer),
            referred_on=referred_on,
            wave=wave,
            decision="rejected" if reasons else "accepted",
            reasons=reasons,
            provider=None if reasons else PROVIDER_OF[person.local_authority],
            sent_nino=person.nino,
            sent_postcode=person.postcode,
            sent_family_name=person.family_name,
            criminal_justice=person.criminal_justice,
            treatment=person.treatment,
        )
        if self.rng.random() < 0.05:
            referral.notes = self.rng.choice(
                (
                    "Prefers morning appointments.",
                    "Would like support with confidence and interview skills.",
                    "Interested in warehouse or driving work.",
                    "Needs appointments near the town centre.",
                )
            )
        mistakes = []
        if person.nino is not None and self.rng.random() < 0.006:
            mistakes.append("typo_nino")
        if self.rng.random() < 0.01:
            mistakes.append("retry")
        referral.mistakes = tuple(mistakes)
        self.referrals.append(referral)
        return referral

    def first_referral(self, number: int) -> None:
        rng = self.rng
        quarter = rng.choices(range(8), weights=QUARTER_SHARE)[0]
        first, last = self.timeline.quarter(quarter)
        referred_on = _weekday(
            first + timedelta(days=rng.randrange((last - first).days + 1)), first, last
        )
        if rng.random() < OUTSIDE_AREA_SHARE:
            area = rng.choice(sorted(OUTSIDE_AREAS))
            source = "jcp"
        else:
            area = pick(rng, AREA_SHARE)
            source = pick(rng, {"jcp": 0.80, "probation": 0.08, "treatment": 0.07, "self": 0.05})
        referrer = {
            "jcp": jcp(OUTSIDE_AREAS.get(area, area)),
            "probation": PROBATION,
            "treatment": TREATMENT_OF.get(area, ""),
            "self": PROVIDER_OF.get(area, ""),
        }[source]
        person = self.person(number, referred_on, area, source)
        self.persons.append(person)
        if rng.random() < 0.003:
            # Sent without consent: refused, nothing stored, in no figure.
            n = self.numbers("refusal")
            draft = Referral(
                key=f"X{n:06d}",
                person=person,
                referrer=referrer,
                source=source,
                external_ref=self.external_ref(referrer),
                referred_on=referred_on,
                wave=1,
                decision="refused",
                sent_nino=person.nino,
                sent_postcode=person.postcode,
                sent_family_name=person.family_name,
            )
            self.refusals.append(Refusal(referrer, draft))
            return
        original = self.referral(person, referrer, source, referred_on, wave=1)
        if original.decision != "accepted":
            return
        self.second_referral(original)
        r = rng.random()
        if r < ATTACH_SHARE:
            original.fate = "attached"
        elif r < ATTACH_SHARE + DECLINE_SHARE:
            original.fate = "declined"
            self.re_referral(original)
        elif r < ATTACH_SHARE + DECLINE_SHARE + WITHDRAW_SHARE:
            original.fate = "withdrawn"
        if original.fate == "attached":
            self.participant(original)

    def second_referral(self, original: Referral) -> None:
        """Another referrer sends the same person while the first referral stands: the
        platform must see it is the same person and mark it ``duplicate``."""
        rng = self.rng
        if rng.random() >= 0.035:
            return
        person = original.person
        referred_on = original.referred_on + timedelta(days=rng.randint(7, 45))
        if self.eligibility(person, referred_on):
            return
        if original.source == "probation":
            referrer, source = jcp(person.local_authority), "jcp"
        else:
            referrer, source = PROBATION, "probation"
        second = self.referral(person, referrer, source, referred_on, wave=2)
        second.decision = "duplicate"
        second.provider = None
        second.duplicate_of = original.key
        second.mistakes = ()
        if source == "probation":
            second.criminal_justice = rng.choice(("community_order", "licence"))
        # Other systems write the same person differently: no NINO on file, postcode in
        # lower case without its space, the family name in capitals.
        if person.nino is not None and rng.random() < 0.5:
            second.sent_nino = None
        if rng.random() < 0.5:
            second.sent_postcode = person.postcode.replace(" ", "").lower()
        if rng.random() < 0.5:
            second.sent_family_name = person.family_name.upper()

    def re_referral(self, declined: Referral) -> None:
        """Someone who did not attend is referred again months later: not a duplicate
        (a declined referral no longer stands), so it is accepted."""
        rng = self.rng
        if rng.random() >= 0.12:
            return
        person = declined.person
        referred_on = declined.referred_on + timedelta(days=rng.randint(60, 200))
        if referred_on > self.timeline.last_referral_day:
            return  # referrals ran for two years
        if self.eligibility(person, referred_on):
            return
        again = self.referral(person, jcp(person.local_authority), "jcp", referred_on, wave=3)
        again.fate = "attached" if rng.random() < 0.65 else "declined"
        if again.fate == "attached":
            self.participant(again)

    # --- the whole story ----------------------------------------------------------------

    def build(self) -> Story:
        self.plans = {}
        for number in range(1, self.people + 1):
            self.first_referral(number)
        for participant in self.participants:
            judge_claims(participant)
        return Story(
            people=self.people,
            seed=self.seed,
            timeline=self.timeline,
            persons=self.persons,
            referrals=self.referrals,
            refusals=self.refusals,
            participants=self.participants,
            syncs=self.syncs(),
        )


def build_story(people: int, seed: int, as_of: date) -> Story:
    """The whole story of ``people`` people, the same every time for the same arguments."""
    if people < 1:
        raise ValueError("people must be at least 1")
    return _Builder(people, seed, as_of).build()


# --- what the rules will decide (contract §4), claim by claim ------------------------------
