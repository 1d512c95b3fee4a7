"""The reporting rules without a database: date arithmetic, exact rates, suppression,
and the claim behind the rollups — that summing contributions dated on or before
``as_of`` gives exactly what the contract's definitions say, for any history."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.reporting.domain.calendar import (
    add_months,
    days_before,
    latest_attachment_for,
    months_to_job_start,
    quarter_of,
)
from services.reporting.domain.contributions import (
    PERFORMANCE_MEASURES,
    Contribution,
    barrier_timeline,
    delta,
    participant_contribution,
    referral_contribution,
    total,
)
from services.reporting.domain.facts import (
    BARRIERS,
    Assessment,
    ParticipantFacts,
    ReferralFacts,
    ever_accepted_evidence,
)
from services.reporting.domain.figures import mean, rate, suppressed
from services.reporting.domain.reports import (
    BarrierSums,
    CohortSums,
    PerformanceSums,
    barriers_report,
    cohort_rows,
    performance_rows,
)
from shared.events.referrals import ReferralStatusChanged

D = date.fromisoformat


# --- calendar -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2024-01-31", 1, "2024-02-29"),  # leap year: clamped to 29th
        ("2023-01-31", 1, "2023-02-28"),
        ("2024-03-31", 1, "2024-04-30"),
        ("2024-01-15", 1, "2024-02-15"),
        ("2024-11-30", 3, "2025-02-28"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2024-02-29", 48, "2028-02-29"),
        ("2024-03-31", -1, "2024-02-29"),
        ("2024-01-10", 0, "2024-01-10"),
        ("2024-12-31", 24, "2026-12-31"),
    ],
)
def test_add_months_clamps_to_month_end(day: str, months: int, expected: str) -> None:
    assert add_months(D(day), months) == D(expected)


@pytest.mark.parametrize(
    ("as_of", "months", "expected"),
    [
        # 29, 30 and 31 January + 1 month all clamp to 29 February.
        ("2024-02-29", 1, "2024-01-31"),
        ("2023-02-28", 1, "2023-01-31"),
        ("2024-03-15", 1, "2024-02-15"),
        ("2024-03-31", 1, "2024-02-29"),
        ("2024-04-30", 1, "2024-03-31"),  # 31 March + 1 = 30 April
        ("2024-07-01", 6, "2024-01-01"),
        ("2024-06-30", 6, "2023-12-31"),
        ("2024-05-05", 0, "2024-05-05"),
    ],
)
def test_latest_attachment_for_min_months(as_of: str, months: int, expected: str) -> None:
    cut = latest_attachment_for(D(as_of), months)
    assert cut == D(expected)
    assert add_months(cut, months) <= D(as_of)
    assert add_months(cut + timedelta(days=1), months) > D(as_of)


@given(st.dates(date(1950, 1, 1), date(2100, 12, 31)), st.integers(0, 60))
def test_latest_attachment_for_is_the_boundary(as_of: date, months: int) -> None:
    cut = latest_attachment_for(as_of, months)
    assert add_months(cut, months) <= as_of < add_months(cut + timedelta(days=1), months)


@pytest.mark.parametrize(
    ("attached", "start", "expected"),
    [
        ("2024-01-31", "2024-02-29", 1),  # 31 Jan + 1 month = 29 Feb: within month 1
        ("2024-01-31", "2024-03-01", 2),
        ("2024-01-20", "2024-01-20", 1),  # a start on the day counts from month 1
        ("2024-01-20", "2024-02-20", 1),
        ("2024-01-20", "2024-02-21", 2),
        ("2024-01-20", "2026-01-20", 24),
        ("2024-01-20", "2026-01-21", 0),  # beyond the 24 months of the curves
        ("2024-01-20", "2023-12-01", 1),
    ],
)
def test_months_to_job_start(attached: str, start: str, expected: int) -> None:
    assert months_to_job_start(D(attached), D(start)) == expected


@given(st.dates(date(2000, 1, 1), date(2040, 1, 1)), st.integers(-40, 900))
def test_months_to_job_start_is_the_first_month_reached(attached: date, offset: int) -> None:
    start = attached + timedelta(days=offset)
    k = months_to_job_start(attached, start)
    first = next((m for m in range(1, 25) if start <= add_months(attached, m)), 0)
    assert k == first


def test_quarters_and_days_before() -> None:
    assert [quarter_of(D(x)) for x in ("2024-01-01", "2024-03-31", "2024-04-01", "2024-12-31")] == [
        "2024-Q1",
        "2024-Q1",
        "2024-Q2",
        "2024-Q4",
    ]
    assert days_before(D("2024-12-31"), 350) == D("2024-01-16")
    assert days_before(date(1, 1, 5), 350) is None


# --- figures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "d", "expected"),
    [
        (1, 8, "0.1250"),
        (1, 32, "0.0313"),  # 0.03125: half-up, not banker's 0.0312
        (3, 64, "0.0469"),  # 0.046875
        (1, 3, "0.3333"),
        (2, 3, "0.6667"),
        (0, 5, "0.0000"),
        (5, 5, "1.0000"),
        (1, 20000, "0.0001"),  # 0.00005 rounds up
        (1, 20001, "0.0000"),
        (7, 2, "3.5000"),
    ],
)
def test_rate_is_exact_and_rounds_half_up(n: int, d: int, expected: str) -> None:
    assert rate(n, d) == Decimal(expected)


def test_zero_or_unknown_denominator_is_null() -> None:
    assert rate(0, 0) is None
    assert rate(3, 0) is None
    assert rate(None, 4) is None
    assert rate(4, None) is None
    assert mean(0, 0) is None


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_rate_matches_decimal_half_up(n: int, d: int) -> None:
    from decimal import ROUND_HALF_UP, localcontext

    with localcontext() as ctx:
        ctx.prec = 60
        exact = (Decimal(n) / Decimal(d)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert rate(n, d) == exact


def test_suppression_blanks_counts_below_threshold_including_zero() -> None:
    assert suppressed(4, 5) is None
    assert suppressed(0, 5) is None
    assert suppressed(5, 5) == 5
    assert suppressed(3, None) == 3
    assert suppressed(None, 5) is None


# --- referral facts ---------------------------------------------------------------------


def _status(status: str, previous: str | None, provider: uuid.UUID | None) -> ReferralStatusChanged:
    return ReferralStatusChanged(
        referral_id=uuid.uuid4(),
        external_ref="X",
        programme="p",
        source="jcp",
        referrer_id=uuid.uuid4(),
        provider_id=provider,
        status=status,
        previous_status=previous,
        reasons=[],
        duplicate_of=None,
        referred_on=D("2024-01-01"),
        local_authority="Wigan",
        benefit="ESA",
        gender=None,
        age_band=None,
        changed_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def test_ever_accepted_evidence() -> None:
    p = uuid.uuid4()
    assert ever_accepted_evidence(_status("accepted", "received", p))
    assert ever_accepted_evidence(_status("attached", "accepted", p))
    assert ever_accepted_evidence(_status("declined", "accepted", p))
    assert ever_accepted_evidence(_status("withdrawn", "accepted", p))
    # Withdrawn while still received: never accepted.
    assert not ever_accepted_evidence(_status("withdrawn", "received", None))
    assert not ever_accepted_evidence(_status("received", None, None))
    assert not ever_accepted_evidence(_status("rejected", "received", None))
    assert not ever_accepted_evidence(_status("duplicate", "received", None))


# --- contributions ----------------------------------------------------------------------

PROGRAMME = "p"
PROVIDER = uuid.UUID(int=7)


def _participant(**kw) -> ParticipantFacts:
    defaults = {"participant_id": uuid.uuid4(), "programme": PROGRAMME, "provider_id": PROVIDER}
    return ParticipantFacts(**(defaults | kw))


def test_a_participant_counts_only_once_attached() -> None:
    stub = _participant(job_start_on=D("2024-03-01"), accruals={D("2024-03-01"): (1, 120000)})
    c = participant_contribution(stub)
    # Only the ledger line counts (in "all" and under its provider).
    keys = sorted((k[1], k[3]) for k in c.performance)
    assert keys == [("all", D("2024-03-01")), ("provider", D("2024-03-01"))]
    assert not c.cohorts and not c.barriers and not c.means


def test_delta_moves_a_participant_between_groups() -> None:
    before = _participant(attached_on=D("2024-01-10"))
    after = _participant(
        participant_id=before.participant_id,
        attached_on=D("2024-01-10"),
        referral_dimensions={"local_authority": "Wigan"},
    )
    change = delta(participant_contribution(before), participant_contribution(after))
    assert change.performance == {
        (PROGRAMME, "local_authority", "Wigan", D("2024-01-10")): [0, 0, 1, 0, 0, 0, 0, 0, 0]
    }
    assert delta(participant_contribution(after), participant_contribution(after)).is_empty()


def test_duplicate_referral_contributes_nothing() -> None:
    referral = ReferralFacts(
        referral_id=uuid.uuid4(),
        programme=PROGRAMME,
        referred_on=D("2024-01-01"),
        source="jcp",
        local_authority="Wigan",
        benefit="ESA",
        gender=None,
        age_band=None,
        provider_id=None,
        ever_accepted=True,
        ever_duplicate=True,
    )
    assert referral_contribution(referral).is_empty()


def _assessment(kind: str, on: str, barriers: dict[str, int], seconds: int = 0) -> Assessment:
    return Assessment(
        assessment_id=uuid.uuid4(),
        kind=kind,
        assessed_on=D(on),
        recorded_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds),
        barriers=barriers,
    )


def test_barrier_timeline_by_hand() -> None:
    # Attached 10 Jan; initial 12 Jan (mental_health 5, debt 4, housing 1); review 1 Jun
    # scores mental_health 3 (improved) and housing 0, but not debt; exit 1 Sep scores
    # mental_health 6 (worse than initial? no: 6 > 5, not improved) and debt 2.
    timeline = barrier_timeline(
        D("2024-01-10"),
        [
            _assessment("initial", "2024-01-12", {"mental_health": 5, "debt": 4, "housing": 1}),
            _assessment("review", "2024-06-01", {"mental_health": 3, "housing": 0}),
            _assessment("exit", "2024-09-01", {"mental_health": 6, "debt": 2}),
        ],
    )
    rows, means = timeline
    jan, jun, sep = D("2024-01-12"), D("2024-06-01"), D("2024-09-01")
    assert rows == {
        ("mental_health", jan): [1, 1, 0, 0],
        ("debt", jan): [1, 1, 0, 0],
        ("housing", jan): [1, 0, 0, 0],
        ("mental_health", jun): [0, 0, 1, 1],  # reviewed, 3 < 5
        ("mental_health", sep): [0, 0, 0, -1],  # latest is now the exit: 6, not improved
        ("debt", sep): [0, 0, 1, 1],  # exit scored debt 2 < 4
    }
    # Means: from June, 1 participant with 2 severe initially, 0 severe at the review;
    # from September 1 severe (mental_health 6) at the latest review.
    assert means == {jun: [1, 2, 0], sep: [0, 0, 1]}


def test_barrier_timeline_starts_at_attachment_and_ignores_unscored_and_unknown() -> None:
    rows, means = barrier_timeline(
        D("2024-02-01"),
        [
            _assessment("initial", "2024-01-20", {"confidence": 6, "not_a_barrier": 6}),
            _assessment("review", "2024-01-25", {"digital_skills": 5}),
        ],
    )
    # Nothing counts before attachment; the review then is the latest, but it did not
    # score confidence: severe, not reviewed.
    assert rows == {("confidence", D("2024-02-01")): [1, 1, 0, 0]}
    assert means == {D("2024-02-01"): [1, 1, 1]}
    assert barrier_timeline(D("2024-02-01"), [_assessment("review", "2024-03-01", {"age": 5})]) == (
        {},
        {},
    )


# --- the rollups equal the definitions, for any history -----------------------------------

LAS = ["Wigan", "Bolton", "Bury"]
START = date(2023, 1, 1)


@st.composite
def histories(draw):
    referrals = []
    participants = []
    n = draw(st.integers(0, 12))
    for _ in range(n):
        referred = START + timedelta(days=draw(st.integers(0, 500)))
        dup = draw(st.booleans()) and draw(st.booleans())
        accepted = not dup and draw(st.integers(0, 3)) > 0
        la = draw(st.sampled_from(LAS))
        gender = draw(st.sampled_from(["female", "male", None]))
        referral = ReferralFacts(
            referral_id=uuid.uuid4(),
            programme=PROGRAMME,
            referred_on=referred,
            source=draw(st.sampled_from(["jcp", "probation", "self"])),
            local_authority=la,
            benefit="ESA",
            gender=gender,
            age_band=draw(st.sampled_from(["18-24", "50+", None])),
            provider_id=PROVIDER if accepted else None,
            ever_accepted=accepted,
            ever_duplicate=dup,
        )
        referrals.append(referral)
        if not accepted or not draw(st.booleans()):
            continue
        attached = referred + timedelta(days=draw(st.integers(0, 60)))
        start = None
        sustained = {}
        if draw(st.booleans()):
            start = attached + timedelta(days=draw(st.integers(0, 800)))
            for weeks in (13, 26, 50):
                if draw(st.booleans()):
                    sustained[weeks] = start + timedelta(days=weeks * 7 + draw(st.integers(0, 40)))
        accruals = {attached: (1, 30000)}
        if start is not None:
            accruals[start] = (
                accruals.get(start, (0, 0))[0] + 1,
                accruals.get(start, (0, 0))[1] + 120000,
            )
        assessments = []
        if draw(st.booleans()):
            keys = draw(
                st.lists(st.sampled_from(BARRIERS[:5]), min_size=1, max_size=4, unique=True)
            )
            initial_on = attached + timedelta(days=draw(st.integers(-5, 30)))
            assessments.append(
                _assessment(
                    "initial", initial_on.isoformat(), {k: draw(st.integers(0, 6)) for k in keys}
                )
            )
            for i in range(draw(st.integers(0, 3))):
                on = attached + timedelta(days=draw(st.integers(-10, 400)))
                rkeys = draw(st.lists(st.sampled_from(BARRIERS[:5]), max_size=5, unique=True))
                assessments.append(
                    _assessment(
                        draw(st.sampled_from(["review", "exit"])),
                        on.isoformat(),
                        {k: draw(st.integers(0, 6)) for k in rkeys},
                        seconds=i,
                    )
                )
        participants.append(
            ParticipantFacts(
                participant_id=uuid.uuid4(),
                programme=PROGRAMME,
                provider_id=PROVIDER,
                referral_id=referral.referral_id,
                attached_on=attached,
                job_start_on=start,
                sustained_on=sustained,
                referral_dimensions={
                    k: v
                    for k, v in {
                        "local_authority": la,
                        "source": referral.source,
                        "benefit": "ESA",
                        "gender": gender,
                        "age_band": referral.age_band,
                    }.items()
                    if v
                },
                accruals=accruals,
                assessments=tuple(assessments),
            )
        )
    return referrals, participants


def _from_rollups(c: Contribution, participants, dim, as_of, months, weeks):
    """What the store's SQL does, in Python: sums over rollup rows by cut-off date."""
    attached_by = latest_attachment_for(as_of, months)
    eligible_by = days_before(as_of, weeks * 7)
    idx = {m: i for i, m in enumerate(PERFORMANCE_MEASURES)}
    sums: dict[str, dict[str, int]] = {}
    for (_, d, key, day), v in c.performance.items():
        if d != dim or day > as_of:
            continue
        s = sums.setdefault(
            key, dict.fromkeys(("r", "a", "att", "js", "sus", "el", "lines", "p"), 0)
        )
        s["r"] += v[idx["referrals"]]
        s["a"] += v[idx["accepted"]]
        if day <= attached_by:
            s["att"] += v[idx["attachments"]]
            s["js"] += v[idx["job_starts"]]
        s["sus"] += v[idx[f"sustained_{weeks}"]]
        if eligible_by is not None and day <= eligible_by:
            s["el"] += v[idx["job_starts"]]
        s["lines"] += v[idx["accrual_lines"]]
        s["p"] += v[idx["accrued_pence"]]
    for p in participants:  # the late-starters correction read off the participants
        key = "all" if dim == "all" else p.dimensions().get(dim)
        if (
            key
            and p.job_start_on
            and attached_by < p.job_start_on <= as_of
            and p.attached_on <= attached_by
        ):
            sums.setdefault(
                key, dict.fromkeys(("r", "a", "att", "js", "sus", "el", "lines", "p"), 0)
            )
            sums[key]["js"] += 1
    return {
        k: PerformanceSums(s["r"], s["a"], s["att"], s["js"], s["sus"], s["el"], s["lines"], s["p"])
        for k, s in sums.items()
    }


def _by_definition(referrals, participants, dim, as_of, months, weeks):
    """Contract §6 read literally, participant by participant."""
    sums: dict[str, dict[str, int]] = {}

    def bucket(key):
        return sums.setdefault(
            key, dict.fromkeys(("r", "a", "att", "js", "sus", "el", "lines", "p"), 0)
        )

    for r in referrals:
        key = "all" if dim == "all" else r.dimensions().get(dim)
        if not key or dim == "attachment_quarter" or r.ever_duplicate or r.referred_on > as_of:
            continue
        bucket(key)["r"] += 1
        bucket(key)["a"] += int(r.ever_accepted)
    for p in participants:
        key = "all" if dim == "all" else p.dimensions().get(dim)
        if not key:
            continue
        for day, (lines, pence) in p.accruals.items():
            if day <= as_of:
                bucket(key)["lines"] += lines
                bucket(key)["p"] += pence
        if p.attached_on > as_of:
            continue
        long_enough = add_months(p.attached_on, months) <= as_of
        if long_enough:
            bucket(key)["att"] += 1
            if p.job_start_on and p.job_start_on <= as_of:
                bucket(key)["js"] += 1
        if weeks in p.sustained_on and p.sustained_on[weeks] <= as_of:
            bucket(key)["sus"] += 1
        if p.job_start_on and p.job_start_on + timedelta(days=weeks * 7) <= as_of:
            bucket(key)["el"] += 1
    return {
        k: PerformanceSums(s["r"], s["a"], s["att"], s["js"], s["sus"], s["el"], s["lines"], s["p"])
        for k, s in sums.items()
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.dates(date(2022, 12, 1), date(2026, 6, 1)),
    st.sampled_from([0, 0, 1, 3, 6, 12]),
    st.sampled_from([13, 26, 50]),
    st.sampled_from(
        ["all", "local_authority", "gender", "age_band", "attachment_quarter", "source"]
    ),
)
def test_performance_from_rollups_equals_definitions(history, as_of, months, weeks, dim) -> None:
    referrals, participants = history
    c = total(
        [referral_contribution(r) for r in referrals]
        + [participant_contribution(p) for p in participants]
    )
    group_by = None if dim == "all" else dim
    got = performance_rows(
        _from_rollups(c, participants, dim, as_of, months, weeks), group_by=group_by
    )
    want = performance_rows(
        _by_definition(referrals, participants, dim, as_of, months, weeks), group_by=group_by
    )
    assert got == want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.dates(date(2022, 12, 1), date(2026, 6, 1)))
def test_cohorts_from_rollups_equal_definitions(history, as_of) -> None:
    _, participants = history
    c = total(participant_contribution(p) for p in participants)
    cohorts: dict[str, CohortSums] = {}
    for (_, attached, k), (n,) in c.cohorts.items():
        if attached > as_of or n == 0:
            continue
        q = cohorts.setdefault(quarter_of(attached), CohortSums(quarter_of(attached)))
        q.attachments += n
        q.by_months_to_start[k] = q.by_months_to_start.get(k, 0) + n
        q.last_attached_on = max(q.last_attached_on or attached, attached)
    got = cohort_rows(list(cohorts.values()), as_of=as_of)

    want = []
    members: dict[str, list[ParticipantFacts]] = {}
    for p in participants:
        if p.attached_on <= as_of:
            members.setdefault(quarter_of(p.attached_on), []).append(p)
    for quarter in sorted(members):
        group = members[quarter]
        rates = []
        for m in range(1, 25):
            if any(add_months(p.attached_on, m) > as_of for p in group):
                rates.append(None)
            else:
                started = sum(
                    1
                    for p in group
                    if p.job_start_on and p.job_start_on <= add_months(p.attached_on, m)
                )
                rates.append(rate(started, len(group)))
        want.append((quarter, len(group), rates))
    assert [(r.cohort, r.attachments, r.job_start_rate_by_month) for r in got] == want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.dates(date(2022, 12, 1), date(2026, 6, 1)))
def test_barriers_from_rollups_equal_definitions(history, as_of) -> None:
    _, participants = history
    c = total(participant_contribution(p) for p in participants)
    sums: dict[str, list[int]] = {}
    for (_, barrier, day), v in c.barriers.items():
        if day <= as_of:
            s = sums.setdefault(barrier, [0, 0, 0, 0])
            for i in range(4):
                s[i] += v[i]
    n = si = sl = 0
    for (_, day), v in c.means.items():
        if day <= as_of:
            n, si, sl = n + v[0], si + v[1], sl + v[2]
    got = barriers_report(
        {b: BarrierSums(*v) for b, v in sums.items()},
        both_assessed=n,
        severe_initial_total=si,
        severe_latest_total=sl,
    )

    want_sums: dict[str, list[int]] = {}
    wn = wsi = wsl = 0
    for p in participants:
        if p.attached_on > as_of:
            continue
        initial = next(
            (a for a in p.assessments if a.kind == "initial" and a.assessed_on <= as_of), None
        )
        if initial is None:
            continue
        reviews = [
            a for a in p.assessments if a.kind in ("review", "exit") and a.assessed_on <= as_of
        ]
        latest = max(reviews, key=lambda a: a.order) if reviews else None
        for barrier, score in initial.barriers.items():
            s = want_sums.setdefault(barrier, [0, 0, 0, 0])
            s[0] += 1
            if score >= 4:
                s[1] += 1
                if latest is not None and barrier in latest.barriers:
                    s[2] += 1
                    s[3] += int(latest.barriers[barrier] < score)
        if latest is not None:
            wn += 1
            wsi += sum(1 for v in initial.barriers.values() if v >= 4)
            wsl += sum(1 for v in latest.barriers.values() if v >= 4)
    want = barriers_report(
        {b: BarrierSums(*v) for b, v in want_sums.items()},
        both_assessed=wn,
        severe_initial_total=wsi,
        severe_latest_total=wsl,
    )
    assert got == want


# --- report assembly --------------------------------------------------------------------


def test_performance_rows_grouping_rules_and_suppression() -> None:
    sums = {
        "Wigan": PerformanceSums(
            referrals=10,
            accepted=8,
            attachments=6,
            job_starts=2,
            accrual_lines=8,
            accrued_pence=420000,
        ),
        "Bolton": PerformanceSums(
            referrals=3, accepted=2, attachments=1, accrual_lines=1, accrued_pence=30000
        ),
        "Bury": PerformanceSums(),  # nothing in it: omitted
    }
    rows = performance_rows(sums, group_by="local_authority")
    assert [r.key for r in rows] == ["Bolton", "Wigan"]
    wigan = rows[1]
    assert (wigan.attachment_rate, wigan.job_start_rate, wigan.sustainment_rate) == (
        Decimal("0.7500"),
        Decimal("0.3333"),
        None,
    )
    hidden = performance_rows(sums, group_by="local_authority", suppress_below=3)
    bolton, wigan = hidden
    # Bolton: 3 referrals shown; accepted 2 and attachments 1 blanked, so both rates too;
    # its pence rest on one ledger line: blanked.
    assert (bolton.referrals, bolton.accepted, bolton.attachments) == (3, None, None)
    assert (bolton.attachment_rate, bolton.job_start_rate, bolton.accrued_pence) == (
        None,
        None,
        None,
    )
    # Wigan: job_starts 2 is blanked and so is job_start_rate; attachment_rate stays.
    assert (wigan.job_starts, wigan.job_start_rate, wigan.attachment_rate) == (
        None,
        None,
        Decimal("0.7500"),
    )
    assert (wigan.sustained, wigan.sustainment_eligible, wigan.accrued_pence) == (
        None,
        None,
        420000,
    )


def test_without_group_by_there_is_always_an_all_row() -> None:
    [only] = performance_rows({}, group_by=None)
    assert only.key == "all" and only.referrals == 0 and only.attachment_rate is None


def test_attachment_quarter_rows_have_no_referral_figures() -> None:
    [q] = performance_rows(
        {"2024-Q1": PerformanceSums(attachments=4, job_starts=1)}, group_by="attachment_quarter"
    )
    assert (q.referrals, q.accepted, q.attachment_rate, q.job_start_rate) == (
        None,
        None,
        None,
        Decimal("0.2500"),
    )


def test_barrier_rows_sorted_by_share_then_name_nulls_last() -> None:
    report = barriers_report(
        {
            "debt": BarrierSums(scored=4, severe=2),
            "age": BarrierSums(scored=2, severe=1),
            "housing": BarrierSums(scored=3, severe=3, reviewed=2, improved=1),
        },
        both_assessed=0,
        severe_initial_total=0,
        severe_latest_total=0,
    )
    order = [r.barrier for r in report.rows]
    assert order[:3] == ["housing", "age", "debt"]  # 1.0, then 0.5 twice by name
    assert order[3:] == sorted(b for b in BARRIERS if b not in ("debt", "age", "housing"))
    assert all(r.severe_share is None for r in report.rows[3:])
    assert report.rows[0].improved_rate == Decimal("0.5000")
    assert report.mean_severe_at_attachment is None
