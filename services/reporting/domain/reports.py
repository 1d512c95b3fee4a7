"""The three reports of contract §6, assembled from sums of the rollups.

The store sums rollup rows dated on or before the right cut-off dates; these functions
turn those sums into report rows: rates, the grouping rules (empty groups omitted,
``attachment_quarter`` without referral figures) and small-number suppression.

Suppression (``suppress_below=N``) blanks, as official statistics do before publication:

* every count below N (zero included): ``referrals``, ``accepted``, ``attachments``,
  ``job_starts``, ``sustained``, ``sustainment_eligible``; cohort ``attachments``;
  barrier ``scored``, ``severe_at_attachment``, ``reviewed``, ``improved``;
* every rate whose numerator or denominator is a count below N, whether or not that
  count is itself shown: ``attachment_rate`` (attachments, accepted),
  ``job_start_rate`` (job_starts, attachments), ``sustainment_rate`` (sustained,
  sustainment_eligible), each cohort month (that month's job starters, attachments),
  ``severe_share`` (severe_at_attachment, scored), ``improved_rate`` (improved,
  reviewed);
* ``accrued_pence`` when it rests on fewer than N ledger lines;
* both barrier means when fewer than N participants have an initial assessment and a
  latest review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.reporting.domain.calendar import add_months
from services.reporting.domain.facts import ALL, BARRIERS
from services.reporting.domain.figures import mean, rate, suppressed

COHORT_MONTHS = 24


# --- performance ------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceSums:
    """One group's counts as of the report date (before suppression)."""

    referrals: int = 0
    accepted: int = 0
    attachments: int = 0
    job_starts: int = 0
    sustained: int = 0
    sustainment_eligible: int = 0
    accrual_lines: int = 0
    accrued_pence: int = 0

    def is_empty(self) -> bool:
        return not (
            self.referrals
            or self.accepted
            or self.attachments
            or self.job_starts
            or self.sustained
            or self.sustainment_eligible
            or self.accrual_lines
        )


@dataclass(frozen=True)
class PerformanceRow:
    key: str
    referrals: int | None
    accepted: int | None
    attachments: int | None
    attachment_rate: Decimal | None
    job_starts: int | None
    job_start_rate: Decimal | None
    sustained: int | None
    sustainment_eligible: int | None
    sustainment_rate: Decimal | None
    accrued_pence: int | None


def performance_rows(
    sums: dict[str, PerformanceSums], *, group_by: str | None, suppress_below: int | None = None
) -> list[PerformanceRow]:
    """Without ``group_by`` one row keyed ``all`` (even when nothing has happened yet);
    with it, one row per group that has anything in it, ordered by key (quarters come
    out oldest first), omitting records with no value for the grouping."""
    if group_by is None:
        return [_performance_row(ALL, sums.get(ALL, PerformanceSums()), False, suppress_below)]
    by_quarter = group_by == "attachment_quarter"
    return [
        _performance_row(key, group, by_quarter, suppress_below)
        for key, group in sorted(sums.items())
        if not group.is_empty()
    ]


def _performance_row(
    key: str, s: PerformanceSums, by_quarter: bool, threshold: int | None
) -> PerformanceRow:
    def shown(count: int) -> int | None:
        return suppressed(count, threshold)

    def rate_of(numerator: int, denominator: int) -> Decimal | None:
        if shown(numerator) is None or shown(denominator) is None:
            return None
        return rate(numerator, denominator)

    accrued = s.accrued_pence if shown(s.accrual_lines) is not None else None
    return PerformanceRow(
        key=key,
        # An attachment quarter has no referrals: referral figures are not defined there.
        referrals=None if by_quarter else shown(s.referrals),
        accepted=None if by_quarter else shown(s.accepted),
        attachments=shown(s.attachments),
        attachment_rate=None if by_quarter else rate_of(s.attachments, s.accepted),
        job_starts=shown(s.job_starts),
        job_start_rate=rate_of(s.job_starts, s.attachments),
        sustained=shown(s.sustained),
        sustainment_eligible=shown(s.sustainment_eligible),
        sustainment_rate=rate_of(s.sustained, s.sustainment_eligible),
        accrued_pence=accrued,
    )


# --- cohorts ------------------------------------------------------------------------------


@dataclass
class CohortSums:
    """One attachment quarter as of the report date."""

    cohort: str
    attachments: int = 0
    last_attached_on: date | None = None
    # months to job start (1..24) -> participants; 0 = no job start within 24 months
    by_months_to_start: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CohortRow:
    cohort: str
    attachments: int | None
    job_start_rate_by_month: list[Decimal | None]


def cohort_rows(
    cohorts: list[CohortSums], *, as_of: date, suppress_below: int | None = None
) -> list[CohortRow]:
    """Oldest quarter first; entry ``m`` is the share that started work within ``m``
    months of attachment, ``None`` while any member has had less than ``m`` months."""
    rows = []
    for c in sorted(cohorts, key=lambda c: c.cohort):
        if c.attachments <= 0 or c.last_attached_on is None:
            continue
        attachments = suppressed(c.attachments, suppress_below)
        rates: list[Decimal | None] = []
        started = 0
        for m in range(1, COHORT_MONTHS + 1):
            started += c.by_months_to_start.get(m, 0)
            too_soon = add_months(c.last_attached_on, m) > as_of
            hidden = attachments is None or suppressed(started, suppress_below) is None
            rates.append(None if too_soon or hidden else rate(started, c.attachments))
        rows.append(CohortRow(c.cohort, attachments, rates))
    return rows


# --- barriers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BarrierSums:
    scored: int = 0
    severe: int = 0
    reviewed: int = 0
    improved: int = 0


@dataclass(frozen=True)
class BarrierRow:
    barrier: str
    scored: int | None
    severe_at_attachment: int | None
    severe_share: Decimal | None
    reviewed: int | None
    improved: int | None
    improved_rate: Decimal | None


@dataclass(frozen=True)
class BarriersReport:
    rows: list[BarrierRow]
    mean_severe_at_attachment: Decimal | None
    mean_severe_at_latest_review: Decimal | None


def barriers_report(
    sums: dict[str, BarrierSums],
    *,
    both_assessed: int,
    severe_initial_total: int,
    severe_latest_total: int,
    suppress_below: int | None = None,
) -> BarriersReport:
    """Every barrier of contract §3, by ``severe_share`` (as shown) descending then name;
    barriers with no share last, by name."""
    rows = [_barrier_row(b, sums.get(b, BarrierSums()), suppress_below) for b in BARRIERS]
    rows.sort(key=lambda r: (r.severe_share is None, -(r.severe_share or 0), r.barrier))
    means_shown = suppressed(both_assessed, suppress_below) is not None
    return BarriersReport(
        rows=rows,
        mean_severe_at_attachment=mean(severe_initial_total, both_assessed)
        if means_shown
        else None,
        mean_severe_at_latest_review=mean(severe_latest_total, both_assessed)
        if means_shown
        else None,
    )


def _barrier_row(barrier: str, s: BarrierSums, threshold: int | None) -> BarrierRow:
    def rate_of(numerator: int, denominator: int) -> Decimal | None:
        if suppressed(numerator, threshold) is None or suppressed(denominator, threshold) is None:
            return None
        return rate(numerator, denominator)

    return BarrierRow(
        barrier=barrier,
        scored=suppressed(s.scored, threshold),
        severe_at_attachment=suppressed(s.severe, threshold),
        severe_share=rate_of(s.severe, s.scored),
        reviewed=suppressed(s.reviewed, threshold),
        improved=suppressed(s.improved, threshold),
        improved_rate=rate_of(s.improved, s.reviewed),
    )
