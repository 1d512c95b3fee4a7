"""The dashboard in a real headless browser (Debian's chromium driven by Playwright):
sign in with a programme-office key (a provider's is refused), check every figure
shown against the API, change the as-of date, reload, sign out; save a screenshot.

Twice: behind a small stand-in for the gateway in front of the in-process service
(:mod:`tests.reporting.browser`; screenshot ``tests/artifacts/dashboard-standin.png``),
and through the real gateway with every service running as a process and real API keys
(``tests/artifacts/dashboard.png``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.store.tables import event_log
from shared.caller import PartnerKind
from shared.db import create_engine
from shared.events.envelope import EventPayload
from tests.reporting.browser import CHROMIUM, CHROMIUM_ARGS, gateway_stand_in, serve
from tests.reporting.programmes import barrier_story, cohort_story, performance_story
from tests.reporting.story import feed, get_report, office, reporting, wait_handled
from tests.support.events import publish
from tests.support.gateway import Gateway

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium (make browser installs it)"
)
DATES = ("2024-12-31", "2024-06-30")


def history(code: str) -> list[EventPayload]:
    """The performance, cohort and barrier stories as one programme (no definition)."""
    events: list[EventPayload] = []
    for story in (performance_story().story, cohort_story(), barrier_story()):
        events += [e.model_copy(update={"programme": code}) for e in story.events[1:]]
    return events


async def expected_reports(api: httpx.AsyncClient, code: str) -> dict[str, dict[str, Any]]:
    return {
        as_of: {
            "overall": await get_report(api, "performance", code, as_of=as_of),
            "by_la": await get_report(
                api, "performance", code, as_of=as_of, group_by="local_authority"
            ),
            "cohorts": await get_report(api, "cohorts", code, as_of=as_of),
            "barriers": await get_report(api, "barriers", code, as_of=as_of),
        }
        for as_of in DATES
    }


async def test_dashboard_behind_a_stand_in_gateway(sandbox, apps, artifacts: Path) -> None:
    rep = await reporting(apps)
    story = performance_story().story  # only for its definition and a fresh code
    await feed(sandbox, rep, [story.events[0], *history(story.code)])
    office_key, provider_key = "pk_" + secrets.token_hex(8), "pk_" + secrets.token_hex(8)
    keys = {
        office_key: (uuid.uuid4(), PartnerKind.PROGRAMME_OFFICE.value),
        provider_key: (uuid.uuid4(), PartnerKind.PROVIDER.value),
    }
    async with office(rep) as api:
        expected = await expected_reports(api, story.code)
    async with serve(gateway_stand_in(rep, keys)) as base:
        await drive_dashboard(
            base,
            story.code,
            office_key=office_key,
            provider_key=provider_key,
            expected=expected,
            screenshot=artifacts / "dashboard-standin.png",
        )


@pytest.mark.platform
async def test_dashboard_through_the_gateway(platform, artifacts: Path) -> None:
    gateway = Gateway(platform.gateway_url, platform.admin_token)
    try:
        office_partner = await gateway.create_partner("programme_office", "Programme office")
        provider = await gateway.create_partner("provider")
        programme = await gateway.define_programme({provider: ["Wigan", "Bolton", "Bury"]})
    finally:
        await gateway.aclose()
    code = programme["code"]
    # The rest of the history as the other services would publish it.
    envelopes = await publish(platform.sandbox, *history(code))
    engine = create_engine(platform.config.database_url("reporting"), schema="reporting")
    try:
        await wait_handled(engine, [e.event_id for e in envelopes], timeout=60)
        # The real services react to some of these (outcomes accrues each attachment):
        # wait until reporting has heard the last of it, so the figures hold still.
        await wait_quiet(engine)
    finally:
        await engine.dispose()
    async with office_partner.client() as api:
        expected = await expected_reports(api, code)
    assert expected["2024-12-31"]["overall"]["rows"][0]["referrals"] == 18
    await drive_dashboard(
        platform.gateway_url,
        code,
        office_key=office_partner.api_key,
        provider_key=provider.api_key,
        expected=expected,
        screenshot=artifacts / "dashboard.png",
    )


async def wait_quiet(engine: AsyncEngine, quiet_for: float = 2.0, timeout: float = 60) -> None:
    """Wait until reporting's event log has taken no new event for ``quiet_for`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, since = None, loop.time()
    while loop.time() < deadline:
        async with engine.connect() as conn:
            seq = (await conn.execute(select(func.max(event_log.c.seq)))).scalar_one()
        if seq != last:
            last, since = seq, loop.time()
        elif loop.time() - since >= quiet_for:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("reporting kept receiving events")


async def drive_dashboard(
    base: str,
    code: str,
    *,
    office_key: str,
    provider_key: str,
    expected: dict[str, dict[str, Any]],
    screenshot: Path,
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # The page runs under its content security policy (nothing inline, nothing
            # from elsewhere): a violation shows up as a console error. (Refused API
            # calls are logged as failed loads: the provider's key below, on purpose.)
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource")
                    else None
                ),
            )
            await page.goto(f"{base}/dashboard?programme={code}&as_of={DATES[0]}")

            # A provider's key is refused, and not kept.
            await page.fill("#api-key", provider_key)
            await page.click("#signin-form button[type=submit]")
            await page.wait_for_selector("#signin-error:not(:empty)")
            assert "not accepted" in await page.text_content("#signin-error")
            assert await page.evaluate("sessionStorage.length") == 0

            await page.fill("#api-key", office_key)
            await page.click("#signin-form button[type=submit]")
            await page.wait_for_selector(f'body[data-loaded="{code}|{DATES[0]}"]', timeout=15000)
            await check_figures(page, expected[DATES[0]])
            await page.screenshot(path=str(screenshot), full_page=True)

            # The as-of picker redraws everything as of another date.
            await page.fill("#as-of", DATES[1])
            await page.dispatch_event("#as-of", "change")
            await page.wait_for_selector(f'body[data-loaded="{code}|{DATES[1]}"]', timeout=15000)
            await check_figures(page, expected[DATES[1]])

            # The key survives a reload of the tab (sessionStorage) ...
            await page.reload()
            await page.wait_for_selector(f'body[data-loaded="{code}|{DATES[1]}"]', timeout=15000)
            # ... and signing out forgets it.
            await page.click("#sign-out")
            assert await page.is_visible("#signin")
            assert await page.evaluate("sessionStorage.length") == 0
            assert errors == []
        finally:
            await browser.close()
    assert await asyncio.to_thread(os.path.getsize, screenshot) > 10_000


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


async def check_figures(page, expected: dict[str, Any]) -> None:
    overall = expected["overall"]["rows"][0]
    # Funnel: every count and rate as the API gives it.
    for field in ("referrals", "accepted", "attachments", "job_starts", "sustained"):
        shown = await page.text_content(f'#funnel [data-step="{field}"] .value')
        assert shown == count(overall[field]), field
    for field in ("attachment_rate", "job_start_rate", "sustainment_rate"):
        shown = await page.text_content(f'#funnel [data-field="{field}"]')
        assert shown == percent(overall[field]), field
    assert await page.get_attribute("#funnel-notes", "data-eligible") == str(
        overall["sustainment_eligible"]
    )

    # Job-start rate by local authority, row by row in the API's order.
    rows = expected["by_la"]["rows"]
    assert await page.eval_on_selector_all(
        "#la-table tbody tr", "rows => rows.map(r => r.dataset.key)"
    ) == [r["key"] for r in rows]
    for r in rows:
        for field, fmt in (
            ("attachments", count),
            ("job_starts", count),
            ("job_start_rate", percent),
        ):
            shown = await page.text_content(
                f'#la-table tr[data-key="{r["key"]}"] td[data-field="{field}"]'
            )
            assert shown == fmt(r[field]), (r["key"], field)

    # Cohort curves: one series per cohort, a point for every non-null month at the
    # API's value, and the target line at the programme's job-start target.
    cohorts = expected["cohorts"]
    series = await page.eval_on_selector_all(
        "#cohort-chart g[data-cohort]",
        """groups => groups.map(g => [g.dataset.cohort,
            Array.from(g.querySelectorAll('circle')).map(c => [Number(c.dataset.month),
                                                               Number(c.dataset.value)])])""",
    )
    assert series == [
        [
            c["cohort"],
            [[m, v] for m, v in enumerate(c["job_start_rate_by_month"], start=1) if v is not None],
        ]
        for c in cohorts["cohorts"]
    ]
    assert len(series) >= 2
    target = await page.get_attribute("#cohort-chart line.target-line", "data-target")
    assert float(target) == cohorts["job_start_target"] == 0.2
    assert "Target 20.00%" in await page.text_content("#cohort-chart")

    # Barriers table, in the API's order, every figure.
    barriers = expected["barriers"]
    assert await page.eval_on_selector_all(
        "#barriers-table tbody tr", "rows => rows.map(r => r.dataset.key)"
    ) == [r["barrier"] for r in barriers["rows"]]
    shown_rows = await page.eval_on_selector_all(
        "#barriers-table tbody tr",
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.textContent))",
    )
    assert shown_rows == [
        [
            count(r["scored"]),
            count(r["severe_at_attachment"]),
            percent(r["severe_share"]),
            count(r["reviewed"]),
            count(r["improved"]),
            percent(r["improved_rate"]),
        ]
        for r in barriers["rows"]
    ]
    means = await page.text_content("#barrier-means")
    for value in (barriers["mean_severe_at_attachment"], barriers["mean_severe_at_latest_review"]):
        assert ("—" if value is None else f"{value:.4f}") in means
