"""Response models of the reports (contract §6), plus the fields reporting adds:
``programme`` and ``as_of`` (the date the figures are as of, after defaulting), and on
the cohorts report ``job_start_target`` (the programme's target, for the chart's line).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class PerformanceRowOut(BaseModel):
    key: str
    referrals: int | None
    accepted: int | None
    attachments: int | None
    attachment_rate: float | None
    job_starts: int | None
    job_start_rate: float | None
    sustained: int | None
    sustainment_eligible: int | None
    sustainment_rate: float | None
    accrued_pence: int | None


class PerformanceOut(BaseModel):
    programme: str
    as_of: date
    rows: list[PerformanceRowOut]


class CohortOut(BaseModel):
    cohort: str
    attachments: int | None
    job_start_rate_by_month: list[float | None]


class CohortsOut(BaseModel):
    programme: str
    as_of: date
    job_start_target: float | None
    cohorts: list[CohortOut]


class BarrierRowOut(BaseModel):
    barrier: str
    scored: int | None
    severe_at_attachment: int | None
    severe_share: float | None
    reviewed: int | None
    improved: int | None
    improved_rate: float | None


class BarriersOut(BaseModel):
    programme: str
    as_of: date
    rows: list[BarrierRowOut]
    mean_severe_at_attachment: float | None
    mean_severe_at_latest_review: float | None


class ProgrammeOut(BaseModel):
    code: str
    name: str
    sustainment_weeks: int
    job_start_target: float | None
    sustainment_target: float | None


class ProgrammesOut(BaseModel):
    items: list[ProgrammeOut]
