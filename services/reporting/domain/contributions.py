"""What each referral and participant adds to the daily rollups.

Every report is a sum over rollup rows dated on or before ``as_of``. A referral or a
participant *contributes* to rollup rows: +1 referral on its ``referred_on``, +1
attachment on its ``attached_on``, the change in its barrier figures on the day of each
assessment, and so on. The rollups are kept equal to the sum of every contribution:

* live, each event changes some facts; the projector subtracts the affected
  participant's (or referral's) contribution before the change and adds it after;
* on rebuild, contributions are summed afresh from the facts.

Both paths use these functions, so they cannot disagree. A change to these rules
needs ``pathways reports rebuild`` to restate the rollups.

Dating rules (each makes "counted as of ``as_of``" a single date comparison):

* a participant counts only once attached, so its job start counts on
  ``max(attached_on, job start)`` and a sustainment on ``max(attached_on, achieved_on)``
  (the same date for every valid claim: outcomes rejects claims before attachment);
* ``sustainment_eligible`` is not stored: it is the job starts dated on or before
  ``as_of - sustainment_weeks * 7``;
* an accrual counts on its ``accrued_on`` under the participant's groups as known.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.reporting.domain.calendar import months_to_job_start
from services.reporting.domain.facts import (
    ALL,
    BARRIER_SET,
    SEVERE_SCORE,
    Assessment,
    ParticipantFacts,
    ReferralFacts,
)

# Columns of the performance rollup, in this order in every vector.
PERFORMANCE_MEASURES: tuple[str, ...] = (
    "referrals",
    "accepted",
    "attachments",
    "job_starts",
    "sustained_13",
    "sustained_26",
    "sustained_50",
    "accrual_lines",
    "accrued_pence",
)
BARRIER_MEASURES: tuple[str, ...] = ("scored", "severe", "reviewed", "improved")
MEANS_MEASURES: tuple[str, ...] = ("participants", "severe_initial", "severe_latest")

_REFERRALS, _ACCEPTED, _ATTACHMENTS, _JOB_STARTS = 0, 1, 2, 3
_SUSTAINED = {13: 4, 26: 5, 50: 6}
_ACCRUAL_LINES, _ACCRUED = 7, 8
_N_PERF = len(PERFORMANCE_MEASURES)

# Keys: performance (programme, dimension, key, day); cohorts (programme, attached_on,
# months to job start, 0 = none within 24 months); barriers (programme, barrier, day);
# means (programme, day).
Tally = dict[tuple[Any, ...], list[int]]


@dataclass
class Contribution:
    performance: Tally = field(default_factory=dict)
    cohorts: Tally = field(default_factory=dict)
    barriers: Tally = field(default_factory=dict)
    means: Tally = field(default_factory=dict)

    def tallies(self) -> Iterator[tuple[str, Tally]]:
        yield "performance", self.performance
        yield "cohorts", self.cohorts
        yield "barriers", self.barriers
        yield "means", self.means

    def add(self, other: Contribution, sign: int = 1) -> Contribution:
        """Add ``other`` (times ``sign``) into this one, in place."""
        for (_, mine), (_, theirs) in zip(self.tallies(), other.tallies(), strict=True):
            for key, vector in theirs.items():
                _accumulate(mine, key, vector if sign == 1 else [-v for v in vector])
        return self

    def without_zeros(self) -> Contribution:
        for _, tally in self.tallies():
            for key in [k for k, v in tally.items() if not any(v)]:
                del tally[key]
        return self

    def is_empty(self) -> bool:
        return not any(tally for _, tally in self.tallies())


def _accumulate(tally: Tally, key: tuple[Any, ...], vector: list[int]) -> None:
    target = tally.get(key)
    if target is None:
        tally[key] = vector.copy()
    else:
        for i, v in enumerate(vector):
            if v:
                target[i] += v


def delta(before: Contribution, after: Contribution) -> Contribution:
    """What to add to the rollups when ``before`` becomes ``after``."""
    return Contribution().add(after).add(before, -1).without_zeros()


def total(contributions: Iterable[Contribution]) -> Contribution:
    out = Contribution()
    for contribution in contributions:
        out.add(contribution)
    return out


def referral_contribution(
    referral: ReferralFacts | None, into: Contribution | None = None
) -> Contribution:
    """+1 referral (and +1 accepted if ever accepted) on ``referred_on`` in every group
    the referral has a value for. A referral ever marked duplicate counts nowhere.

    With ``into``, the contribution is added to that running total (and returned)."""
    out = into if into is not None else Contribution()
    if referral is None or referral.ever_duplicate:
        return out
    vector = [0] * _N_PERF
    vector[_REFERRALS] = 1
    vector[_ACCEPTED] = 1 if referral.ever_accepted else 0
    performance = out.performance
    for dim, key in ((ALL, ALL), *referral.dimensions().items()):
        target = performance.get((referral.programme, dim, key, referral.referred_on))
        if target is None:
            performance[(referral.programme, dim, key, referral.referred_on)] = vector.copy()
        else:
            target[_REFERRALS] += 1
            target[_ACCEPTED] += vector[_ACCEPTED]
    return out


def participant_contribution(
    participant: ParticipantFacts | None, into: Contribution | None = None
) -> Contribution:
    """Everything a participant adds (see the module's dating rules). With ``into``, it
    is added to that running total (and returned)."""
    out = into if into is not None else Contribution()
    if participant is None:
        return out
    programme = participant.programme
    groups = [(ALL, ALL), *participant.dimensions().items()]
    dated: dict[date, list[int]] = {}

    def bump(day: date, index: int, amount: int = 1) -> None:
        vector = dated.get(day)
        if vector is None:
            vector = dated[day] = [0] * _N_PERF
        vector[index] += amount

    attached = participant.attached_on
    if attached is not None:
        bump(attached, _ATTACHMENTS)
        start = participant.job_start_on
        if start is not None:
            bump(max(attached, start), _JOB_STARTS)
        for weeks, achieved in participant.sustained_on.items():
            if weeks in _SUSTAINED:
                bump(max(attached, achieved), _SUSTAINED[weeks])
        months = months_to_job_start(attached, start) if start is not None else 0
        _accumulate(out.cohorts, (programme, attached, months), [1])
        if participant.assessments:
            barriers, means = barrier_timeline(attached, participant.assessments)
            tally = out.barriers
            for (barrier, day), vector in barriers.items():
                target = tally.get((programme, barrier, day))
                if target is None:
                    tally[(programme, barrier, day)] = vector
                else:
                    for i, v in enumerate(vector):
                        target[i] += v
            for day, vector in means.items():
                _accumulate(out.means, (programme, day), vector)
    for day, (lines, pence) in participant.accruals.items():
        bump(day, _ACCRUAL_LINES, lines)
        bump(day, _ACCRUED, pence)
    # The hot loop of a rebuild (a million participants x groups x days): inlined.
    performance = out.performance
    for day, vector in dated.items():
        nonzero = [(i, v) for i, v in enumerate(vector) if v]
        for dim, key in groups:
            target = performance.get((programme, dim, key, day))
            if target is None:
                performance[(programme, dim, key, day)] = vector.copy()
            else:
                for i, v in nonzero:
                    target[i] += v
    return out


def barrier_timeline(
    attached_on: date, assessments: Iterable[Assessment]
) -> tuple[dict[tuple[str, date], list[int]], dict[date, list[int]]]:
    """How the participant's barrier figures change over business dates.

    As of a date ``t`` the participant counts (attached on or before ``t``, initial
    assessment dated on or before ``t``), the latest review is the latest ``review``
    or ``exit`` dated on or before ``t``, and each barrier the initial assessment
    scored gives (scored, severe, reviewed, improved) per contract §6. The figures only
    change on the attachment date and on assessment dates; the result holds the change
    on each such date, so summing every change dated on or before ``as_of`` gives the
    figures as of ``as_of``.
    """
    assessments = list(assessments)
    initials = [a for a in assessments if a.kind == "initial"]
    if not initials:
        return {}, {}
    initial = min(initials, key=lambda a: a.order)
    reviews = sorted(
        (a for a in assessments if a.kind in ("review", "exit")), key=lambda a: a.order
    )
    points = sorted({attached_on, initial.assessed_on, *(r.assessed_on for r in reviews)})
    start = max(attached_on, initial.assessed_on)
    scored = [(b, s) for b, s in initial.barriers.items() if b in BARRIER_SET]
    initial_severe = initial.severe_count()

    barrier_changes: dict[tuple[str, date], list[int]] = {}
    mean_changes: dict[date, list[int]] = {}
    previous_rows: dict[str, tuple[int, int, int, int]] = {}
    previous_means = (0, 0, 0)
    latest: Assessment | None = None
    next_review = 0
    for day in points:
        # reviews are in order: the latest dated on or before this day
        while next_review < len(reviews) and reviews[next_review].assessed_on <= day:
            latest = reviews[next_review]
            next_review += 1
        if day < start:
            continue
        rows = _barrier_rows(scored, latest)
        means = (1, initial_severe, latest.severe_count()) if latest is not None else (0, 0, 0)
        for barrier in rows.keys() | previous_rows.keys():
            now = rows.get(barrier, (0, 0, 0, 0))
            before = previous_rows.get(barrier, (0, 0, 0, 0))
            if now != before:
                barrier_changes[(barrier, day)] = [a - b for a, b in zip(now, before, strict=True)]
        if means != previous_means:
            mean_changes[day] = [a - b for a, b in zip(means, previous_means, strict=True)]
        previous_rows, previous_means = rows, means
    return barrier_changes, mean_changes


def _barrier_rows(
    scored: list[tuple[str, int]], latest: Assessment | None
) -> dict[str, tuple[int, int, int, int]]:
    """(scored, severe, reviewed, improved) for each barrier the initial assessment
    scored (only the contract's keys: casework records nothing else)."""
    rows: dict[str, tuple[int, int, int, int]] = {}
    review = latest.barriers if latest is not None else {}
    for barrier, score in scored:
        if score < SEVERE_SCORE:
            rows[barrier] = (1, 0, 0, 0)
        elif barrier in review:
            rows[barrier] = (1, 1, 1, int(review[barrier] < score))
        else:
            rows[barrier] = (1, 1, 0, 0)
    return rows
