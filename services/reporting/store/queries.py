"""The report reads: sums of rollup rows dated on or before the report's cut-offs.

Each report reads in one REPEATABLE READ, READ ONLY transaction so every figure comes
from the same snapshot, with JIT off (compiling would cost more than these small
aggregates take).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.domain.facts import ALL, SUSTAINMENT_TYPES
from services.reporting.domain.reports import BarrierSums, CohortSums, PerformanceSums
from services.reporting.store.tables import programmes, rebuild_state


@dataclass(frozen=True)
class Programme:
    code: str
    name: str
    sustainment_weeks: int
    job_start_target: float | None
    sustainment_target: float | None


async def begin_snapshot(session: AsyncSession) -> None:
    """Start the report's transaction: one consistent, read-only snapshot."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    await session.execute(text("SET LOCAL jit = off"))


async def rebuild_running(session: AsyncSession) -> bool:
    query = select(rebuild_state.c.in_progress).where(rebuild_state.c.id == 1)
    return bool((await session.execute(query)).scalar_one_or_none())


def _programme(row) -> Programme:
    return Programme(
        code=row.code,
        name=row.name,
        sustainment_weeks=row.sustainment_weeks,
        job_start_target=float(row.job_start_target) if row.job_start_target is not None else None,
        sustainment_target=float(row.sustainment_target)
        if row.sustainment_target is not None
        else None,
    )


async def find_programme(session: AsyncSession, code: str) -> Programme | None:
    row = (await session.execute(select(programmes).where(programmes.c.code == code))).first()
    return _programme(row) if row is not None else None


async def list_programmes(session: AsyncSession) -> list[Programme]:
    rows = (await session.execute(select(programmes).order_by(programmes.c.code))).all()
    return [_programme(row) for row in rows]


# How each group_by key is read off a participant row (min_months_attached correction).
_PARTICIPANT_KEY = {
    ALL: "'all'",
    "provider": "provider_id::text",
    "local_authority": "local_authority",
    "source": "source",
    "benefit": "benefit",
    "gender": "gender",
    "age_band": "age_band",
    "attachment_quarter": "to_char(attached_on, 'YYYY') || '-Q' || to_char(attached_on, 'Q')",
}


async def performance_sums(
    session: AsyncSession,
    *,
    programme: str,
    dim: str,
    as_of: date,
    attached_by: date,
    eligible_by: date | None,
    sustainment_weeks: int,
) -> dict[str, PerformanceSums]:
    """Per group key: the counts of contract §6 as of ``as_of``.

    ``attached_by`` is the ``min_months_attached`` cut-off (``as_of`` without it);
    ``eligible_by`` is ``as_of - sustainment_weeks * 7`` (``None``: before the calendar).
    Job starts of participants attached by the cut-off are the rollup's job starts
    dated by the cut-off, plus those attached by it who started after it (read from
    the participants' job-start index: only the last few months' starters).
    """
    sustained = SUSTAINMENT_TYPES.get(sustainment_weeks)
    # A programme whose sustainment_weeks has no claim type (13, 26, 50) has nobody
    # sustained: there is no claim that could say so.
    sustained_sql = f"sum({sustained})" if sustained else "0"
    eligible_sql = (
        "sum(job_starts) FILTER (WHERE day <= :eligible_by)" if eligible_by is not None else "0"
    )
    params = {
        "programme": programme,
        "dim": dim,
        "as_of": as_of,
        "attached_by": attached_by,
        "eligible_by": eligible_by,
    }
    sql = f"""
        SELECT key,
          coalesce(sum(referrals), 0) AS referrals,
          coalesce(sum(accepted), 0) AS accepted,
          coalesce(sum(attachments) FILTER (WHERE day <= :attached_by), 0) AS attachments,
          coalesce(sum(job_starts) FILTER (WHERE day <= :attached_by), 0) AS job_starts,
          coalesce({sustained_sql}, 0) AS sustained,
          coalesce({eligible_sql}, 0) AS eligible,
          coalesce(sum(accrual_lines), 0) AS accrual_lines,
          coalesce(sum(accrued_pence), 0) AS accrued_pence
        FROM performance_daily
        WHERE programme = :programme AND dim = :dim AND day <= :as_of
        GROUP BY key
    """
    if eligible_by is None:
        params.pop("eligible_by")
    rows = (await session.execute(text(sql), params)).all()
    late_starts: dict[str, int] = {}
    if attached_by < as_of:
        key_sql = _PARTICIPANT_KEY[dim]
        late = await session.execute(
            text(f"""
                SELECT {key_sql} AS key, count(*) AS n
                FROM participants
                WHERE programme = :programme
                  AND job_start_on > :attached_by AND job_start_on <= :as_of
                  AND attached_on <= :attached_by
                  AND {key_sql} IS NOT NULL
                GROUP BY 1
            """),
            {"programme": programme, "attached_by": attached_by, "as_of": as_of},
        )
        late_starts = {row.key: int(row.n) for row in late}
    sums: dict[str, PerformanceSums] = {}
    for row in rows:
        sums[row.key] = PerformanceSums(
            referrals=int(row.referrals),
            accepted=int(row.accepted),
            attachments=int(row.attachments),
            job_starts=int(row.job_starts) + late_starts.pop(row.key, 0),
            sustained=int(row.sustained),
            sustainment_eligible=int(row.eligible),
            accrual_lines=int(row.accrual_lines),
            accrued_pence=int(row.accrued_pence),
        )
    for key, n in late_starts.items():  # defensive: a group known only from late starts
        sums[key] = PerformanceSums(job_starts=n)
    return sums


async def cohort_sums(session: AsyncSession, *, programme: str, as_of: date) -> list[CohortSums]:
    rows = await session.execute(
        text("""
            SELECT to_char(attached_on, 'YYYY') || '-Q' || to_char(attached_on, 'Q') AS cohort,
              months_to_job_start AS months, sum(participants) AS n, max(attached_on) AS last
            FROM cohort_daily
            WHERE programme = :programme AND attached_on <= :as_of AND participants > 0
            GROUP BY 1, 2
        """),
        {"programme": programme, "as_of": as_of},
    )
    cohorts: dict[str, CohortSums] = {}
    for row in rows:
        c = cohorts.setdefault(row.cohort, CohortSums(cohort=row.cohort))
        c.attachments += int(row.n)
        c.by_months_to_start[int(row.months)] = int(row.n)
        if c.last_attached_on is None or row.last > c.last_attached_on:
            c.last_attached_on = row.last
    return list(cohorts.values())


@dataclass(frozen=True)
class BarrierTotals:
    by_barrier: dict[str, BarrierSums]
    both_assessed: int
    severe_initial: int
    severe_latest: int


async def barrier_sums(session: AsyncSession, *, programme: str, as_of: date) -> BarrierTotals:
    params = {"programme": programme, "as_of": as_of}
    rows = await session.execute(
        text("""
            SELECT barrier, sum(scored) AS scored, sum(severe) AS severe,
              sum(reviewed) AS reviewed, sum(improved) AS improved
            FROM barrier_daily WHERE programme = :programme AND day <= :as_of
            GROUP BY barrier
        """),
        params,
    )
    by_barrier = {
        row.barrier: BarrierSums(
            int(row.scored), int(row.severe), int(row.reviewed), int(row.improved)
        )
        for row in rows
    }
    means = (
        await session.execute(
            text("""
                SELECT coalesce(sum(participants), 0) AS n,
                  coalesce(sum(severe_initial), 0) AS initial,
                  coalesce(sum(severe_latest), 0) AS latest
                FROM barrier_means_daily WHERE programme = :programme AND day <= :as_of
            """),
            params,
        )
    ).one()
    return BarrierTotals(by_barrier, int(means.n), int(means.initial), int(means.latest))
