"""Every report of a programme, over several dates and every grouping, as one value
that two states of the projections can be compared by."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.store.tables import FACT_TABLES, ROLLUP_TABLES
from tests.reporting.story import get_report

DATES = ("2023-12-31", "2024-02-29", "2024-06-30", "2024-12-31", "2025-06-30", "2026-12-31")
GROUPS = (
    None,
    "local_authority",
    "provider",
    "source",
    "benefit",
    "attachment_quarter",
    "gender",
    "age_band",
)


async def all_reports(client: httpx.AsyncClient, programme: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for as_of in DATES:
        for group_by in GROUPS:
            for months in (0, 6):
                params: dict[str, Any] = {"as_of": as_of, "min_months_attached": months}
                if group_by:
                    params["group_by"] = group_by
                report = await get_report(client, "performance", programme, **params)
                out[f"performance/{as_of}/{group_by}/{months}"] = report["rows"]
        out[f"cohorts/{as_of}"] = (await get_report(client, "cohorts", programme, as_of=as_of))[
            "cohorts"
        ]
        barriers = await get_report(client, "barriers", programme, as_of=as_of)
        barriers.pop("programme")
        out[f"barriers/{as_of}"] = barriers
    return out


async def projection_rows(engine: AsyncEngine) -> dict[str, list[tuple]]:
    """Every fact row, and every rollup row that holds anything (live updates can leave
    rows summing to zero behind; they change no report)."""
    out: dict[str, list[tuple]] = {}
    async with engine.connect() as conn:
        for table in FACT_TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {table.name}"))).all()
            out[table.name] = sorted(tuple(r) for r in rows)
        for table in ROLLUP_TABLES:
            keys = [c.name for c in table.primary_key.columns]
            measures = [c.name for c in table.columns if c.name not in keys]
            nonzero = " OR ".join(f"{m} <> 0" for m in measures)
            rows = (await conn.execute(text(f"SELECT * FROM {table.name} WHERE {nonzero}"))).all()
            out[table.name] = sorted(tuple(r) for r in rows)
    return out
