"""Who may pull reports, what bad parameters get, the wait for a programme defined a
moment ago (§8), the answer during a rebuild, and the dashboard's static files."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import update

from services.reporting.store.tables import rebuild_state
from shared.caller import PartnerKind
from tests.reporting.story import Story, feed, get_report, office, reporting
from tests.support.events import publish

REPORTS = ("performance", "cohorts", "barriers")


@pytest.fixture(scope="module")
async def programme(sandbox, apps) -> str:
    story = Story().define()
    await feed(sandbox, await reporting(apps), story.events)
    return story.code


def assert_problem(response, status: int, fields: list[str] | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    if fields is not None:
        assert [e["field"] for e in body["errors"]] == fields
    return body


@pytest.mark.parametrize("report", REPORTS)
async def test_unsigned_calls_are_refused(apps, programme, report) -> None:
    async with (await reporting(apps)).client() as anonymous:
        response = await anonymous.get(f"/v1/reports/{report}", params={"programme": programme})
    assert_problem(response, 401)


@pytest.mark.parametrize("kind", ["jcp", "probation", "treatment", "provider"])
@pytest.mark.parametrize("report", [*REPORTS, "programmes"])
async def test_only_the_programme_office_pulls_reports(apps, programme, report, kind) -> None:
    rep = await reporting(apps)
    async with rep.client(uuid.uuid4(), kind) as partner:
        response = await partner.get(f"/v1/reports/{report}", params={"programme": programme})
    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["programme"]),
        ({"programme": ""}, ["programme"]),
        ({"programme": "x" * 201}, ["programme"]),
        ({"as_of": "2024-02-30"}, ["as_of"]),
        ({"as_of": "20240203"}, ["as_of"]),
        ({"as_of": "2024-W05-6"}, ["as_of"]),
        ({"as_of": "2024-2-3"}, ["as_of"]),
        ({"as_of": "yesterday"}, ["as_of"]),
        ({"as_of": ""}, ["as_of"]),
        ({"as_of": "2024-02-03T00:00:00"}, ["as_of"]),
        ({"as_of": "1899-12-31"}, ["as_of"]),
        ({"as_of": "3000-01-01"}, ["as_of"]),
        ({"as_of": "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0661"}, ["as_of"]),  # not ASCII
        ({"format": "pdf"}, ["format"]),
        ({"format": "CSV"}, ["format"]),
        ({"suppress_below": "-1"}, ["suppress_below"]),
        ({"suppress_below": "five"}, ["suppress_below"]),
        ({"suppress_below": "1.5"}, ["suppress_below"]),
        ({"suppress_below": "1000001"}, ["suppress_below"]),
    ],
)
@pytest.mark.parametrize("report", REPORTS)
async def test_bad_parameters_are_named(apps, programme, report, params, fields) -> None:
    query = {"programme": programme} | params
    if params == {}:
        query = {}
    async with office(await reporting(apps)) as client:
        response = await client.get(f"/v1/reports/{report}", params=query)
    assert_problem(response, 422, fields)


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"group_by": "postcode"}, ["group_by"]),
        ({"group_by": ""}, ["group_by"]),
        ({"min_months_attached": "-1"}, ["min_months_attached"]),
        ({"min_months_attached": "six"}, ["min_months_attached"]),
        ({"min_months_attached": "1201"}, ["min_months_attached"]),
        ({"group_by": "nino", "as_of": "nope"}, ["as_of", "group_by"]),
    ],
)
async def test_bad_performance_parameters_are_named(apps, programme, params, fields) -> None:
    async with office(await reporting(apps)) as client:
        response = await client.get(
            "/v1/reports/performance", params={"programme": programme} | params
        )
    body = assert_problem(response, 422)
    assert sorted(e["field"] for e in body["errors"]) == fields


async def test_unknown_programme_is_404(apps) -> None:
    async with office(await reporting(apps)) as client:
        response = await client.get(
            "/v1/reports/performance", params={"programme": "never-defined"}
        )
    assert_problem(response, 404)


async def test_a_programme_defined_a_moment_ago_is_waited_for(sandbox, apps) -> None:
    rep = await reporting(apps)
    story = Story()
    async with office(rep) as client:
        request = asyncio.create_task(
            client.get("/v1/reports/cohorts", params={"programme": story.code})
        )
        await asyncio.sleep(0.3)  # the request is waiting for the definition
        await publish(sandbox, *story.define().events)
        response = await request
    assert response.status_code == 200, response.text
    assert response.json()["cohorts"] == []


async def test_as_of_defaults_to_today_in_the_uk(apps, programme) -> None:
    from services.reporting.api.routes import uk_today

    async with office(await reporting(apps)) as client:
        report = await get_report(client, "barriers", programme)
    assert report["as_of"] == uk_today().isoformat()


async def test_reports_answer_503_while_rebuilding(apps, programme) -> None:
    rep = await reporting(apps)
    async with rep.runtime.engine.begin() as conn:
        await conn.execute(update(rebuild_state).values(in_progress=True))
    try:
        async with office(rep) as client:
            for report in REPORTS:
                response = await client.get(
                    f"/v1/reports/{report}", params={"programme": programme}
                )
                assert_problem(response, 503)
                assert response.headers["retry-after"] == "30"
    finally:
        async with rep.runtime.engine.begin() as conn:
            await conn.execute(update(rebuild_state).values(in_progress=False))


async def test_programmes_list(apps, programme) -> None:
    async with office(await reporting(apps)) as client:
        response = await client.get("/v1/reports/programmes")
    assert response.status_code == 200
    [ours] = [p for p in response.json()["items"] if p["code"] == programme]
    assert ours == {
        "code": programme,
        "name": f"Programme {programme}",
        "sustainment_weeks": 50,
        "job_start_target": 0.2,
        "sustainment_target": 0.75,
    }


async def test_dashboard_is_served_without_a_caller(apps) -> None:
    async with (await reporting(apps)).client() as anonymous:
        page = await anonymous.get("/dashboard")
        script = await anonymous.get("/dashboard/dashboard.js")
        style = await anonymous.get("/dashboard/dashboard.css")
        missing = await anonymous.get("/dashboard/secrets.txt")
        escape = await anonymous.get("/dashboard/..%2Fapp.py")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script src="/dashboard/dashboard.js"' in page.text
    assert script.status_code == 200 and "text/javascript" in script.headers["content-type"]
    assert "sessionStorage" in script.text and "/v1/reports/cohorts" in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert_problem(missing, 404)
    assert escape.status_code == 404


async def test_openapi_documents_the_reports(apps) -> None:
    async with (await reporting(apps)).client() as anonymous:
        spec = (await anonymous.get("/openapi.json")).json()
    performance = spec["paths"]["/v1/reports/performance"]["get"]
    assert {p["name"] for p in performance["parameters"]} == {
        "programme",
        "as_of",
        "format",
        "suppress_below",
        "group_by",
        "min_months_attached",
    }
    assert set(performance["responses"]) >= {"200", "401", "403", "404", "422", "503"}
    assert "text/csv" in performance["responses"]["200"]["content"]
    assert "/dashboard" not in spec["paths"]
    assert PartnerKind.PROGRAMME_OFFICE.value  # the only kind allowed (see above)
