"""The lives of the people who attach: barriers and how they change, jobs and how
long they last, when support ends, the key worker's sessions.

Shapes from the Working Well Expansion evaluation (SQW, 2018): the six most common
severe barriers and their improvement at six months (Table 3-2), 2.7 severe barriers
at attachment and 1.7 at review (¶3.24), job start rates by benefit, area and age
(¶3.28), about 20% of each cohort into work within two years (¶3.16), 44% of starters
sustaining 50 weeks (¶3.18).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from pathways.simulate import people as synth
from pathways.simulate.draws import Context, band, pick
from pathways.simulate.programme import INGEUS, SUPPORT_WEEKS
from pathways.simulate.records import (
    BARRIERS,
    Assessment,
    Episode,
    Participant,
    Referral,
    SessionVersion,
)
from pathways.simulate.rules import SEVERE_SCORE, UK, age_on

SEVERE_SHARE: dict[str, float] = {
    "confidence": 0.27,
    "work_experience": 0.26,
    "private_transport": 0.25,
    "qualifications_skills": 0.23,
    "physical_health": 0.20,
    "mental_health": 0.20,
    "digital_skills": 0.17,
    "debt": 0.14,
    "local_labour_market": 0.13,
    "public_transport": 0.13,
    "housing": 0.11,
    "age": 0.10,
    "family_support": 0.08,
    "bereavement": 0.07,
    "relationship_breakdown": 0.07,
    "childcare": 0.06,
    "caring_responsibilities": 0.06,
    "substance_misuse": 0.05,
    "convictions": 0.05,
    "chaotic_lifestyle": 0.05,
}
# Of those severe and reviewed, the share whose score improved (Table 3-2).
IMPROVED_SHARE: dict[str, float] = {
    "confidence": 0.75,
    "work_experience": 0.77,
    "private_transport": 0.73,
    "qualifications_skills": 0.82,
    "physical_health": 0.67,
    "mental_health": 0.74,
}
DEFAULT_IMPROVED_SHARE = 0.72

# Quarterly cohorts differ: Q3 and Q4 lag, Q5 is the quickest into work (¶3.16).
COHORT_PACE = (1.10, 1.06, 0.90, 0.88, 1.18, 1.00, 0.97, 0.95)
# Job start rates by benefit, relative: ESA 9%, JSA 22%, IS 27% (¶3.28).
BENEFIT_PACE = {"ESA": 0.42, "JSA": 1.15, "IS": 1.35, "UC": 1.0}
# By area: Manchester lowest, Wigan highest (¶3.28, ¶3.6).
AREA_PACE = {
    "Manchester": 0.85,
    "Wigan": 1.22,
    "Bolton": 1.08,
    "Bury": 1.08,
    "Rochdale": 1.06,
    "Oldham": 0.92,
    "Salford": 0.95,
    "Stockport": 1.0,
    "Tameside": 0.97,
    "Trafford": 1.04,
}
AGE_PACE = {"18-24": 1.15, "25-34": 1.2, "35-49": 1.0, "50+": 0.62}
# Calibrated so that about 21% of attached people find a qualifying job in the support
# period, and about 20% of each cohort have a validated job start within 24 months.
JOB_PACE = 0.245


class Lives(Context):
    # --- participants -------------------------------------------------------------------

    def participant(self, referral: Referral) -> None:
        rng = self.rng
        assert referral.provider is not None
        delay = min(45, 1 + int(rng.gammavariate(2.0, 6.0)))
        attached_on = referral.referred_on + timedelta(days=delay)
        assert attached_on <= self.timeline.latest_attachment
        n = len(self.participants) + 1
        short = "ING" if referral.provider == INGEUS else "TGC"
        participant = Participant(
            key=f"P{n:06d}",
            referral=referral,
            provider=referral.provider,
            attached_on=attached_on,
            key_worker=f"kw-{short.lower()}-{rng.randrange(synth.KEY_WORKERS_PER_PROVIDER):02d}",
            assessments=[self.initial_assessment(referral, attached_on)],
        )
        mistakes = []
        if rng.random() < 0.01:
            mistakes.append("retry_attach")
        if rng.random() < 0.004:
            mistakes.append("wrong_provider_attach")
        if rng.random() < 0.005:
            mistakes.append("bad_score")
        if rng.random() < 0.003:
            mistakes.append("second_initial")
        if rng.random() < 0.005:
            mistakes.append("withdraw_after_attach")
        participant.mistakes = tuple(mistakes)
        self.working_life(participant)
        self.reviews(participant)
        self.sessions(participant, short)
        self.claims(participant)
        self.participants.append(participant)

    def initial_assessment(self, referral: Referral, on: date) -> Assessment:
        rng = self.rng
        person = referral.person
        age = band(age_on(person.date_of_birth, referral.referred_on))
        scores: dict[str, int] = {}
        for barrier in BARRIERS:
            if rng.random() < 0.02:
                continue  # not scored: unknown, not 0
            p = SEVERE_SHARE[barrier]
            if barrier in ("physical_health", "mental_health"):
                p *= 1.45 if person.benefit == "ESA" else 0.77
            elif barrier == "convictions":
                p = 0.6 if referral.source == "probation" else 0.018
            elif barrier == "substance_misuse":
                p = 0.55 if referral.source == "treatment" else 0.015
            elif barrier in ("age", "digital_skills"):
                p *= {"50+": 1.9, "35-49": 0.8, "25-34": 0.45, "18-24": 0.3}[age]
            elif barrier == "work_experience":
                p *= 1.5 if age == "18-24" else 0.93
            if rng.random() < p:
                scores[barrier] = rng.choices((4, 5, 6), weights=(0.45, 0.35, 0.20))[0]
            else:
                scores[barrier] = rng.choices((0, 1, 2, 3), weights=(0.35, 0.25, 0.22, 0.18))[0]
        wellbeing = max(14, min(70, int(rng.gauss(40, 8)))) if rng.random() < 0.8 else None
        return Assessment("initial", on, scores, wellbeing)

    def evolve(self, before: Assessment, kind: str, on: date, months: int) -> Assessment:
        """Scores some months on: most severe barriers ease (Table 3-2), a few worsen."""
        rng = self.rng
        scores: dict[str, int] = {}
        for barrier, score in before.barriers.items():
            if rng.random() < 0.04:
                continue  # not re-scored this time
            if score >= SEVERE_SCORE:
                share = IMPROVED_SHARE.get(barrier, DEFAULT_IMPROVED_SHARE)
                if months > 6:
                    share *= 0.5
                if rng.random() < share * 0.93:
                    score -= rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
                elif rng.random() < 0.25:
                    score = min(6, score + 1)
            else:
                r = rng.random()
                if r < 0.12:
                    score = min(6, score + 1)
                elif r < 0.45:
                    score = max(0, score - 1)
            scores[barrier] = score
        if not scores:
            scores = dict(before.barriers)
        wellbeing = None
        if before.wellbeing is not None and rng.random() < 0.9:
            wellbeing = max(14, min(70, before.wellbeing + int(rng.gauss(4, 5))))
        return Assessment(kind, on, scores, wellbeing)

    def reviews(self, participant: Participant) -> None:
        rng = self.rng
        left_on = participant.exit[0] if participant.exit else None
        latest = participant.initial
        first_review = participant.attached_on + timedelta(days=182 + rng.randint(0, 21))
        if (left_on is None or first_review <= left_on) and rng.random() < 0.62:
            latest = self.evolve(latest, "review", first_review, 6)
            participant.assessments.append(latest)
            second = participant.attached_on + timedelta(days=365 + rng.randint(0, 30))
            if (left_on is None or second <= left_on) and rng.random() < 0.25:
                latest = self.evolve(latest, "review", second, 12)
                participant.assessments.append(latest)
        if left_on is not None and left_on > latest.assessed_on and rng.random() < 0.25:
            participant.assessments.append(self.evolve(latest, "exit", left_on, 6))

    def job_pace(self, participant: Participant) -> float:
        referral = participant.referral
        person = referral.person
        first = self.timeline.first_referral_day
        day = referral.referred_on
        index = min(7, ((day.year - first.year) * 12 + day.month - first.month) // 3)
        severe = len(participant.initial.severe())
        age = band(age_on(person.date_of_birth, referral.referred_on))
        return (
            JOB_PACE
            * BENEFIT_PACE[person.benefit]
            * AREA_PACE[person.local_authority]
            * COHORT_PACE[index]
            * AGE_PACE[age]
            * (0.9 ** (severe - 2.7))
        )

    def job(self, start: date, *, hours: float | None = None) -> Episode:
        rng = self.rng
        self_employed = hours is None and rng.random() < 0.07
        if hours is None:
            if self_employed:
                hours = float(rng.choice((10, 12, 15, 20, 25, 30, 35)))
            else:
                hours = rng.choice((16.0, 18.0, 20.0, 22.5, 25.0, 30.0, 35.0, 37.5, 40.0))
        employer = rng.choice(synth.SELF_EMPLOYMENT if self_employed else synth.EMPLOYERS)
        pay = int(hours * rng.choice((1042, 1100, 1150, 1200, 1300)))
        return Episode(employer, start, None, hours, pay, self_employed)

    def ended(self, episode: Episode, last_day: date) -> Episode:
        """An episode ending on ``last_day``; one whose end is not yet reached by
        ``as_of`` is still ongoing (an end is never recorded in advance)."""
        if last_day >= self.timeline.as_of:
            return episode
        return replace(episode, ended_on=last_day)

    def working_life(self, participant: Participant) -> None:
        """Jobs, and when support ends. Sets episodes, exit, and ``participant.plan``."""
        rng = self.rng
        attached = participant.attached_on
        support_end = attached + timedelta(days=SUPPORT_WEEKS * 7)
        episodes: list[Episode] = []
        plan: dict[str, Any] = {}
        referred_on = participant.referral.referred_on
        if (attached - referred_on).days >= 3 and rng.random() < 0.012:
            # Started work between referral and attachment: not a programme job start.
            start = referred_on + timedelta(days=rng.randint(1, (attached - referred_on).days - 1))
            episodes.append(
                self.ended(
                    self.job(start, hours=30.0), start + timedelta(days=rng.randint(60, 400))
                )
            )
            plan["before_attachment"] = 0
        starter = "before_attachment" not in plan and rng.random() < self.job_pace(participant)
        if starter:
            if rng.random() < 0.55:
                days = 0
                while not 1 <= days <= 700:
                    days = 1 + int(rng.expovariate(1 / 150))
            else:
                days = rng.randint(20, 700)
            start = attached + timedelta(days=days)
            if days >= 80 and rng.random() < 0.15:
                mini_start = attached + timedelta(days=rng.randint(5, days - 60))
                mini_end = mini_start + timedelta(days=rng.randint(14, 40))
                episodes.append(
                    self.ended(
                        self.job(mini_start, hours=float(rng.choice((8, 10, 12, 15)))), mini_end
                    )
                )
                plan["mini"] = len(episodes) - 1
            plan["job"] = len(episodes)
            episodes.extend(self.employment_pattern(start))
        elif rng.random() < 0.04:
            days = rng.randint(20, 600)
            mini_start = attached + timedelta(days=days)
            episodes.append(
                self.ended(
                    self.job(mini_start, hours=float(rng.choice((8, 10, 12, 15)))),
                    mini_start + timedelta(days=rng.randint(20, 200)),
                )
            )
            plan["mini"] = len(episodes) - 1
        participant.episodes = episodes
        # When support ends: two years for most; early leavers; those who moved away.
        last_start = max((e.started_on for e in episodes), default=attached)
        if starter:
            exit_ = (support_end, "completed") if last_start <= support_end else None
        else:
            r = rng.random()
            if r < 0.30:
                exit_ = (attached + timedelta(days=rng.randint(40, 600)), "left_early")
            elif r < 0.33:
                exit_ = (attached + timedelta(days=rng.randint(60, 500)), "moved_away")
            else:
                exit_ = (support_end, "completed")
            if exit_[0] < last_start:
                exit_ = (support_end, "completed") if last_start <= support_end else None
        assert exit_ is None or exit_[0] <= self.timeline.as_of
        participant.exit = exit_
        self.plans[participant.key] = plan

    def employment_pattern(self, start: date) -> list[Episode]:
        """The job(s) of someone who starts work: many keep it a year or more (¶3.18: 44%
        sustain 50 weeks), some change jobs after a short gap, most leave earlier."""
        rng = self.rng
        first = self.job(start)
        r = rng.random()
        if r < 0.40:  # in work for over a year
            if rng.random() < 0.5:
                return [first]
            return [self.ended(first, start + timedelta(days=rng.randint(380, 700)))]
        if r < 0.49:
            if r < 0.45:  # a new job after a short gap: still 50 weeks out of 54
                end = start + timedelta(days=rng.randint(30, 250))
                second_start = end + timedelta(days=rng.randint(3, 22))
            else:  # a longer gap between jobs
                end = start + timedelta(days=rng.randint(30, 200))
                second_start = end + timedelta(days=rng.randint(40, 120))
            if end >= self.timeline.as_of:
                return [first]
            if second_start >= self.timeline.as_of:
                return [self.ended(first, end)]
            return [self.ended(first, end), self.job(second_start)]
        days = pick(rng, {(14, 90): 0.2, (91, 181): 0.25, (182, 349): 0.55})
        return [self.ended(first, start + timedelta(days=rng.randint(*days)))]

    # --- sessions -----------------------------------------------------------------------

    def sessions(self, participant: Participant, crm: str) -> None:
        rng = self.rng
        as_of = self.timeline.as_of
        left_on = participant.exit[0] if participant.exit else None
        # Nothing on or after as_of's eve: a session (or its edit) must not be in the future.
        end = min(
            left_on or as_of,
            participant.attached_on + timedelta(days=700),
            as_of - timedelta(days=2),
        )
        days = max(1, (end - participant.attached_on).days)
        count = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 6))
        later = (
            participant.attached_on + timedelta(days=rng.randint(1, days)) for _ in range(count)
        )
        dates = [participant.attached_on, *sorted(later)]
        job_start = participant.episodes[-1].started_on if participant.episodes else None
        out = []
        for i, day in enumerate(dates):
            at = datetime.combine(day, time(rng.randint(9, 16), rng.choice((0, 15, 30, 45))), UK)
            if i == 0:
                kind, attendance = "one_to_one", "attended"
            else:
                in_work = job_start is not None and day >= job_start
                kind = (
                    "in_work_support"
                    if in_work and rng.random() < 0.7
                    else pick(rng, {"one_to_one": 0.55, "phone": 0.2, "group": 0.15, "video": 0.1})
                )
                attendance = pick(rng, {"attended": 0.8, "did_not_attend": 0.14, "cancelled": 0.06})
            duration = rng.choice((30, 45, 60, 90)) if attendance == "attended" else None
            n = self.numbers(f"session:{crm}")
            out.append(
                SessionVersion(
                    external_id=f"{crm}-CRM-{n:07d}",
                    participant=participant.key,
                    occurred_at=at,
                    kind=kind,
                    duration_minutes=duration,
                    attendance=attendance,
                    modified_at=at + timedelta(hours=rng.randint(1, 30)),
                    notes=rng.choice(synth.SESSION_NOTES) if attendance == "attended" else None,
                )
            )
        participant.sessions = out
