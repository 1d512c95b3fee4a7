"""The report endpoints (contract §6), for the programme office only.

Every report takes ``programme`` (required), ``as_of`` (``YYYY-MM-DD``, default today in
UK time), ``format`` (``json``, ``csv`` or ``xlsx``) and ``suppress_below``; the
performance report also ``group_by`` and ``min_months_attached``. Bad parameters get a
``422`` naming the parameter; an unknown programme a ``404``; a rebuild in progress a
``503`` with ``Retry-After``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from services.reporting import exports
from services.reporting.api.models import (
    BarrierRowOut,
    BarriersOut,
    CohortOut,
    CohortsOut,
    PerformanceOut,
    PerformanceRowOut,
    ProgrammeOut,
    ProgrammesOut,
)
from services.reporting.domain.calendar import days_before, latest_attachment_for
from services.reporting.domain.facts import ALL
from services.reporting.domain.figures import as_float
from services.reporting.domain.reports import (
    COHORT_MONTHS,
    barriers_report,
    cohort_rows,
    performance_rows,
)
from services.reporting.store import queries
from shared.caller import CallerDep, PartnerKind, require_kind
from shared.consistency import wait_for
from shared.db import SessionDep
from shared.errors import Problem, not_found, problem

router = APIRouter(prefix="/v1/reports", tags=["reports"])

UK = ZoneInfo("Europe/London")
EARLIEST_AS_OF = date(1900, 1, 1)
LATEST_AS_OF = date(2999, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

GroupBy = Literal[
    "local_authority", "provider", "source", "benefit", "attachment_quarter", "gender", "age_band"
]
Format = Literal["json", "csv", "xlsx"]

_DOWNLOADS = {
    "content": {
        exports.CSV_TYPE.split(";")[0]: {"schema": {"type": "string"}},
        exports.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
    },
    "description": "The report; with format=csv or format=xlsx, as a download",
}
_RESPONSES = {
    200: _DOWNLOADS,
    401: problem("Not signed by the gateway"),
    403: problem("Only the programme office may pull reports"),
    404: problem("No such programme"),
    422: problem("Invalid parameters (each named in errors)"),
    503: problem("Reports are being rebuilt; retry after Retry-After seconds"),
}


def uk_today() -> date:
    return datetime.now(UK).date()


def _iso_date(value: str | None) -> date | None:
    """``as_of``: strictly ``YYYY-MM-DD`` (no week dates, no times, ASCII digits only)."""
    if value is None:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None
    if not EARLIEST_AS_OF <= day <= LATEST_AS_OF:
        raise ValueError(f"must be between {EARLIEST_AS_OF} and {LATEST_AS_OF}")
    return day


@dataclass(frozen=True)
class ReportParams:
    programme: str
    as_of: date
    format: Format
    suppress_below: int | None


async def report_params(
    programme: Annotated[str, Query(min_length=1, max_length=200, description="Programme code")],
    as_of: Annotated[
        str | None,
        Query(description="Business date the figures are as of (YYYY-MM-DD); default today"),
        AfterValidator(_iso_date),
    ] = None,
    format: Annotated[Format, Query(description="json (default), csv or xlsx")] = "json",
    suppress_below: Annotated[
        int | None,
        Query(ge=0, le=1_000_000, description="Blank counts below this, and rates built on them"),
    ] = None,
) -> ReportParams:
    # The validator has made as_of a date (typed str for the OpenAPI schema).
    day: date | None = as_of  # type: ignore[assignment]
    return ReportParams(programme, day or uk_today(), format, suppress_below)


ParamsDep = Annotated[ReportParams, Depends(report_params)]


async def _programme(request: Request, session: AsyncSession, code: str) -> queries.Programme:
    """The programme, waiting briefly for a definition made a moment ago (§8); then the
    report's snapshot transaction begins."""
    if await queries.rebuild_running(session):
        raise Problem(
            503,
            "Reporting is rebuilding its projections; the figures will be back shortly.",
            headers={"Retry-After": "30"},
        )

    async def fetch() -> queries.Programme | None:
        found = await queries.find_programme(session, code)
        await session.rollback()  # each look is its own transaction: see new commits
        return found

    timeout = request.app.state.runtime.settings.platform.consistency_wait_seconds
    programme = await wait_for(fetch, timeout=timeout)
    if programme is None:
        raise not_found("programme")
    await queries.begin_snapshot(session)
    return programme


def _about(report: str, params: ReportParams, **extra: object) -> list[tuple[str, str]]:
    about = [
        ("report", report),
        ("programme", params.programme),
        ("as_of", params.as_of.isoformat()),
        *((k, "" if v is None else str(v)) for k, v in extra.items()),
        ("suppress_below", "" if params.suppress_below is None else str(params.suppress_below)),
    ]
    return about


@router.get(
    "/performance",
    response_model=PerformanceOut,
    responses=_RESPONSES,
    summary="Referral-to-job funnel, overall or by group",
)
async def performance(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    params: ParamsDep,
    group_by: Annotated[GroupBy | None, Query(description="Group rows by this key")] = None,
    min_months_attached: Annotated[
        int,
        Query(ge=0, le=1200, description="Only participants attached at least this many months"),
    ] = 0,
) -> PerformanceOut | Response:
    require_kind(caller, PartnerKind.PROGRAMME_OFFICE)
    programme = await _programme(request, session, params.programme)
    sums = await queries.performance_sums(
        session,
        programme=programme.code,
        dim=group_by or ALL,
        as_of=params.as_of,
        attached_by=latest_attachment_for(params.as_of, min_months_attached),
        eligible_by=days_before(params.as_of, programme.sustainment_weeks * 7),
        sustainment_weeks=programme.sustainment_weeks,
    )
    await session.rollback()
    rows = performance_rows(sums, group_by=group_by, suppress_below=params.suppress_below)
    out = [
        PerformanceRowOut(
            key=r.key,
            referrals=r.referrals,
            accepted=r.accepted,
            attachments=r.attachments,
            attachment_rate=as_float(r.attachment_rate),
            job_starts=r.job_starts,
            job_start_rate=as_float(r.job_start_rate),
            sustained=r.sustained,
            sustainment_eligible=r.sustainment_eligible,
            sustainment_rate=as_float(r.sustainment_rate),
            accrued_pence=r.accrued_pence,
        )
        for r in rows
    ]
    if params.format != "json":
        table = exports.Table(
            name="performance",
            columns=[
                ("key", "text"),
                ("referrals", "count"),
                ("accepted", "count"),
                ("attachments", "count"),
                ("attachment_rate", "rate"),
                ("job_starts", "count"),
                ("job_start_rate", "rate"),
                ("sustained", "count"),
                ("sustainment_eligible", "count"),
                ("sustainment_rate", "rate"),
                ("accrued_pence", "pence"),
            ],
            rows=[
                [
                    r.key,
                    r.referrals,
                    r.accepted,
                    r.attachments,
                    r.attachment_rate,
                    r.job_starts,
                    r.job_start_rate,
                    r.sustained,
                    r.sustainment_eligible,
                    r.sustainment_rate,
                    r.accrued_pence,
                ]
                for r in rows
            ],
            about=_about(
                "performance",
                params,
                group_by=group_by,
                min_months_attached=min_months_attached,
                sustainment_weeks=programme.sustainment_weeks,
            ),
        )
        return exports.download(
            table, params.format, programme=programme.code, as_of=params.as_of.isoformat()
        )
    return PerformanceOut(programme=programme.code, as_of=params.as_of, rows=out)


@router.get(
    "/cohorts",
    response_model=CohortsOut,
    responses=_RESPONSES,
    summary="Cumulative job-start rate of each attachment quarter by months since attachment",
)
async def cohorts(
    request: Request, caller: CallerDep, session: SessionDep, params: ParamsDep
) -> CohortsOut | Response:
    require_kind(caller, PartnerKind.PROGRAMME_OFFICE)
    programme = await _programme(request, session, params.programme)
    sums = await queries.cohort_sums(session, programme=programme.code, as_of=params.as_of)
    await session.rollback()
    rows = cohort_rows(sums, as_of=params.as_of, suppress_below=params.suppress_below)
    if params.format != "json":
        table = exports.Table(
            name="cohorts",
            columns=[
                ("cohort", "text"),
                ("attachments", "count"),
                *((f"m{m}", "rate") for m in range(1, COHORT_MONTHS + 1)),
            ],
            rows=[[r.cohort, r.attachments, *r.job_start_rate_by_month] for r in rows],
            about=_about("cohorts", params, job_start_target=programme.job_start_target),
        )
        return exports.download(
            table, params.format, programme=programme.code, as_of=params.as_of.isoformat()
        )
    return CohortsOut(
        programme=programme.code,
        as_of=params.as_of,
        job_start_target=programme.job_start_target,
        cohorts=[
            CohortOut(
                cohort=r.cohort,
                attachments=r.attachments,
                job_start_rate_by_month=[as_float(v) for v in r.job_start_rate_by_month],
            )
            for r in rows
        ],
    )


@router.get(
    "/barriers",
    response_model=BarriersOut,
    responses=_RESPONSES,
    summary="Severe barriers at attachment and how many improved by the latest review",
)
async def barriers(
    request: Request, caller: CallerDep, session: SessionDep, params: ParamsDep
) -> BarriersOut | Response:
    require_kind(caller, PartnerKind.PROGRAMME_OFFICE)
    programme = await _programme(request, session, params.programme)
    totals = await queries.barrier_sums(session, programme=programme.code, as_of=params.as_of)
    await session.rollback()
    report = barriers_report(
        totals.by_barrier,
        both_assessed=totals.both_assessed,
        severe_initial_total=totals.severe_initial,
        severe_latest_total=totals.severe_latest,
        suppress_below=params.suppress_below,
    )
    if params.format != "json":
        means = [report.mean_severe_at_attachment, report.mean_severe_at_latest_review]
        table = exports.Table(
            name="barriers",
            columns=[
                ("barrier", "text"),
                ("scored", "count"),
                ("severe_at_attachment", "count"),
                ("severe_share", "rate"),
                ("reviewed", "count"),
                ("improved", "count"),
                ("improved_rate", "rate"),
                ("mean_severe_at_attachment", "rate"),
                ("mean_severe_at_latest_review", "rate"),
            ],
            rows=[
                [
                    r.barrier,
                    r.scored,
                    r.severe_at_attachment,
                    r.severe_share,
                    r.reviewed,
                    r.improved,
                    r.improved_rate,
                    *means,
                ]
                for r in report.rows
            ],
            about=_about("barriers", params),
        )
        return exports.download(
            table, params.format, programme=programme.code, as_of=params.as_of.isoformat()
        )
    return BarriersOut(
        programme=programme.code,
        as_of=params.as_of,
        rows=[
            BarrierRowOut(
                barrier=r.barrier,
                scored=r.scored,
                severe_at_attachment=r.severe_at_attachment,
                severe_share=as_float(r.severe_share),
                reviewed=r.reviewed,
                improved=r.improved,
                improved_rate=as_float(r.improved_rate),
            )
            for r in report.rows
        ],
        mean_severe_at_attachment=as_float(report.mean_severe_at_attachment),
        mean_severe_at_latest_review=as_float(report.mean_severe_at_latest_review),
    )


@router.get(
    "/programmes",
    response_model=ProgrammesOut,
    responses={k: v for k, v in _RESPONSES.items() if k in (401, 403)},
    summary="Programmes reporting knows (for the dashboard's selector)",
)
async def programmes(caller: CallerDep, session: SessionDep) -> ProgrammesOut:
    require_kind(caller, PartnerKind.PROGRAMME_OFFICE)
    found = await queries.list_programmes(session)
    return ProgrammesOut(
        items=[
            ProgrammeOut(
                code=p.code,
                name=p.name,
                sustainment_weeks=p.sustainment_weeks,
                job_start_target=p.job_start_target,
                sustainment_target=p.sustainment_target,
            )
            for p in found
        ]
    )
