"""Rebuild: drop the projections, replay the event log, reach the same state — proven by
comparing every report (and every projection row) before and after."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import rebuild as rebuilding
from services.reporting.store.tables import rebuild_state
from tests.reporting.programmes import barrier_story, cohort_story, performance_story
from tests.reporting.snapshots import all_reports, projection_rows
from tests.reporting.story import Story, feed, get_report, office, reporting, row, wait_handled
from tests.support.events import publish

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def programmes(sandbox, apps) -> list[str]:
    rep = await reporting(apps)
    performance = performance_story()
    shuffled = performance_story()
    events = list(shuffled.story.events)
    # A second copy of the programme whose events arrived newest first.
    events.reverse()
    cohorts, barriers = cohort_story(), barrier_story()
    await feed(sandbox, rep, performance.story.events + cohorts.events + barriers.events)
    await feed(sandbox, rep, events)
    return [performance.story.code, shuffled.story.code, cohorts.code, barriers.code]


async def test_rebuild_reaches_the_same_state(apps, programmes) -> None:
    rep = await reporting(apps)
    async with office(rep) as client:
        before = {code: await all_reports(client, code) for code in programmes}
        rows_before = await projection_rows(rep.runtime.engine)
        stages: list[str] = []
        result = await rebuilding.rebuild(
            rep.runtime.engine, progress=lambda stage, done, total: stages.append(stage)
        )
        after = {code: await all_reports(client, code) for code in programmes}
        rows_after = await projection_rows(rep.runtime.engine)
    assert result.events_replayed > 0 and result.events_during_rebuild == 0
    assert "replaying events" in stages and "writing rollups" in stages
    for code in programmes:
        assert after[code] == before[code], code
    assert rows_after == rows_before
    # and the figures are still the hand-worked ones
    perf = after[programmes[0]]["performance/2024-12-31/None/0"]
    assert [perf[0][k] for k in ("referrals", "accepted", "attachments", "job_starts")] == [
        7,
        5,
        4,
        3,
    ]
    async with rep.runtime.engine.connect() as conn:
        state = (await conn.execute(select(rebuild_state))).one()
    assert state.in_progress is False and state.events_replayed == result.events_replayed


async def test_events_arriving_during_a_rebuild_are_applied_before_it_ends(
    sandbox, apps, programmes
) -> None:
    rep = await reporting(apps)
    engine = rep.runtime.engine
    # Step 1 of the rebuild: from here on handlers only log.
    async with engine.connect() as conn:
        high = await rebuilding._mark_started(conn)
    late = Story().define()
    referral = late.referral("2024-03-01", statuses=("received", "accepted", "attached"))
    late.attach(referral, "2024-03-10")
    envelopes = await publish(sandbox, *late.events)
    await wait_handled(rep, [e.event_id for e in envelopes])  # logged, not yet applied
    async with office(rep) as client:
        response = await client.get("/v1/reports/performance", params={"programme": late.code})
        assert response.status_code == 503
        # Steps 2 and 3.
        async with engine.connect() as conn:
            result = await rebuilding._rebuild_in_one_transaction(conn, high, rebuilding._quiet)
            await conn.commit()
        assert result["events_during_rebuild"] == len(envelopes)
        report = await get_report(client, "performance", late.code, as_of="2024-12-31")
        assert (row(report)["referrals"], row(report)["attachments"]) == (1, 1)
        # Live handling has resumed.
        more = Story(code=late.code)
        more.referral("2024-04-01", statuses=("received",))
        await feed(sandbox, rep, more.events)
        report = await get_report(client, "performance", late.code, as_of="2024-12-31")
        assert row(report)["referrals"] == 2


async def test_one_rebuild_at_a_time(apps, programmes) -> None:
    rep = await reporting(apps)
    async with rep.runtime.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": rebuilding.REBUILD_LOCK})
        try:
            with pytest.raises(rebuilding.RebuildAlreadyRunning):
                await rebuilding.rebuild(rep.runtime.engine)
        finally:
            await holder.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": rebuilding.REBUILD_LOCK}
            )
            await holder.commit()


async def test_a_failed_rebuild_changes_nothing_and_keeps_reports_closed(
    apps, programmes, monkeypatch
) -> None:
    rep = await reporting(apps)
    async with office(rep) as client:
        before = await get_report(client, "performance", programmes[0], as_of="2024-12-31")

        async def broken(session: AsyncSession, **_) -> tuple[int, int]:
            raise RuntimeError("simulated failure while summing")

        monkeypatch.setattr(rebuilding, "recompute_rollups", broken)
        with pytest.raises(RuntimeError):
            await rebuilding.rebuild(rep.runtime.engine)
        response = await client.get("/v1/reports/performance", params={"programme": programmes[0]})
        assert response.status_code == 503
        monkeypatch.undo()
        await rebuilding.rebuild(rep.runtime.engine)
        after = await get_report(client, "performance", programmes[0], as_of="2024-12-31")
    assert after == before


async def test_pathways_reports_rebuild_command(sandbox, apps, programmes) -> None:
    rep = await reporting(apps)
    async with office(rep) as client:
        before = await all_reports(client, programmes[2])
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTING_")}
        process = await asyncio.create_subprocess_exec(
            str(REPO / ".venv" / "bin" / "pathways"),
            "reports",
            "rebuild",
            "--database-url",
            sandbox.config.database_url("reporting"),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        assert process.returncode == 0, err.decode()
        assert out.decode().startswith("rebuilt: "), out
        assert "replaying events" in err.decode()
        assert await all_reports(client, programmes[2]) == before
    assert sys.executable  # the command ran as its own process, like an operator's
