"""?format=csv and ?format=xlsx for every report: the same rows as the JSON, a header of
field names, null as an empty field or cell, typed spreadsheet cells; and suppression."""

from __future__ import annotations

import csv
import io
import uuid

import openpyxl
import pytest

from tests.reporting.programmes import (
    PerformanceStory,
    barrier_story,
    cohort_story,
    performance_story,
)
from tests.reporting.story import Story, feed, get_report, office, reporting

PERFORMANCE_HEADER = [
    "key",
    "referrals",
    "accepted",
    "attachments",
    "attachment_rate",
    "job_starts",
    "job_start_rate",
    "sustained",
    "sustainment_eligible",
    "sustainment_rate",
    "accrued_pence",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
async def stories(sandbox, apps) -> tuple[PerformanceStory, Story, Story]:
    performance = performance_story()
    cohorts = cohort_story()
    barriers = barrier_story()
    await feed(
        sandbox,
        await reporting(apps),
        performance.story.events + cohorts.events + barriers.events,
    )
    return performance, cohorts, barriers


@pytest.fixture
async def client(apps):
    async with office(await reporting(apps)) as c:
        yield c


async def download(client, report: str, programme: str, fmt: str, **params) -> bytes:
    response = await client.get(
        f"/v1/reports/{report}", params={"programme": programme, "format": fmt, **params}
    )
    assert response.status_code == 200, response.text
    expected_type = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    assert response.headers["content-type"] == expected_type
    as_of = params.get("as_of")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{report}-{programme}-{as_of}.{fmt}"'
    )
    return response.content


def parse_csv(body: bytes) -> list[list[str]]:
    assert body.endswith(b"\r\n")
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def csv_text(value) -> str:
    return "" if value is None else str(value)


def sheet_rows(body: bytes) -> tuple[list[tuple], openpyxl.Workbook]:
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    return list(workbook.worksheets[0].iter_rows(values_only=True)), workbook


@pytest.mark.parametrize("group_by", [None, "local_authority", "attachment_quarter"])
async def test_performance_csv_is_the_json_rows(stories, client, group_by) -> None:
    code = stories[0].story.code
    params = {"as_of": "2024-12-31"} | ({"group_by": group_by} if group_by else {})
    report = await get_report(client, "performance", code, **params)
    rows = parse_csv(await download(client, "performance", code, "csv", **params))
    assert rows[0] == PERFORMANCE_HEADER
    assert rows[1:] == [[csv_text(r[f]) for f in PERFORMANCE_HEADER] for r in report["rows"]]
    if group_by is None:
        # all,7,5,4,0.8,3,0.75,0,0,,490000 — null sustainment_rate as an empty field.
        assert rows[1] == ["all", "7", "5", "4", "0.8", "3", "0.75", "0", "0", "", "490000"]


async def test_performance_xlsx_has_typed_cells(stories, client) -> None:
    code = stories[0].story.code
    report = await get_report(
        client, "performance", code, as_of="2024-12-31", group_by="local_authority"
    )
    rows, workbook = sheet_rows(
        await download(
            client, "performance", code, "xlsx", as_of="2024-12-31", group_by="local_authority"
        )
    )
    assert list(rows[0]) == PERFORMANCE_HEADER
    assert [list(r) for r in rows[1:]] == [
        [r[f] for f in PERFORMANCE_HEADER] for r in report["rows"]
    ]
    sheet = workbook.worksheets[0]
    bolton = [c for c in sheet[2]]
    assert bolton[0].value == "Bolton" and bolton[0].data_type == "s"
    assert bolton[1].value == 2 and bolton[1].data_type == "n"
    assert bolton[4].value == 0 and bolton[4].number_format == "0.00%"  # attachment_rate
    assert bolton[6].value is None  # job_start_rate: null -> empty cell
    wigan = [c for c in sheet[4]]
    assert wigan[10].value == 490000 and wigan[10].data_type == "n"
    about = dict(workbook["about"].iter_rows(values_only=True))
    assert about["programme"] == code and about["group_by"] == "local_authority"
    assert about["as_of"] == "2024-12-31"


async def test_cohorts_csv_and_xlsx(stories, client) -> None:
    code = stories[1].code
    report = await get_report(client, "cohorts", code, as_of="2024-09-30")
    header = ["cohort", "attachments", *(f"m{m}" for m in range(1, 25))]
    expected = [
        [c["cohort"], c["attachments"], *c["job_start_rate_by_month"]] for c in report["cohorts"]
    ]
    rows = parse_csv(await download(client, "cohorts", code, "csv", as_of="2024-09-30"))
    assert rows[0] == header
    assert rows[1:] == [[csv_text(v) for v in r] for r in expected]
    assert rows[1][:9] == ["2024-Q1", "3", "0.3333", "0.6667", "0.6667", "1.0", "1.0", "1.0", ""]
    xrows, _ = sheet_rows(await download(client, "cohorts", code, "xlsx", as_of="2024-09-30"))
    assert list(xrows[0]) == header
    assert [list(r) for r in xrows[1:]] == expected


async def test_barriers_csv_and_xlsx(stories, client) -> None:
    code = stories[2].code
    report = await get_report(client, "barriers", code, as_of="2024-12-31")
    fields = [
        "barrier",
        "scored",
        "severe_at_attachment",
        "severe_share",
        "reviewed",
        "improved",
        "improved_rate",
    ]
    header = [*fields, "mean_severe_at_attachment", "mean_severe_at_latest_review"]
    means = [report["mean_severe_at_attachment"], report["mean_severe_at_latest_review"]]
    expected = [[r[f] for f in fields] + means for r in report["rows"]]
    rows = parse_csv(await download(client, "barriers", code, "csv", as_of="2024-12-31"))
    assert rows[0] == header
    assert rows[1:] == [[csv_text(v) for v in r] for r in expected]
    assert len(rows) == 21
    xrows, _ = sheet_rows(await download(client, "barriers", code, "xlsx", as_of="2024-12-31"))
    assert list(xrows[0]) == header
    assert [list(r) for r in xrows[1:]] == expected


async def test_suppression_in_exports(stories, client) -> None:
    code = stories[0].story.code
    params = {"as_of": "2024-12-31", "group_by": "local_authority", "suppress_below": 3}
    report = await get_report(client, "performance", code, **params)
    bolton = next(r for r in report["rows"] if r["key"] == "Bolton")
    # Bolton: 2 referrals, 1 accepted, 0 attached: every count below 3 blanked, and every
    # rate built on them; its pence rest on no ledger lines: blanked.
    assert bolton == {"key": "Bolton"} | dict.fromkeys(PERFORMANCE_HEADER[1:])
    wigan = next(r for r in report["rows"] if r["key"] == "Wigan")
    assert (wigan["referrals"], wigan["attachments"], wigan["job_start_rate"]) == (3, 3, 1.0)
    assert (wigan["sustained"], wigan["sustainment_rate"], wigan["accrued_pence"]) == (
        None,
        None,
        490000,
    )
    rows = parse_csv(await download(client, "performance", code, "csv", **params))
    assert rows[1] == ["Bolton"] + [""] * 10
    xrows, _ = sheet_rows(await download(client, "performance", code, "xlsx", **params))
    assert list(xrows[1]) == ["Bolton"] + [None] * 10


async def test_partner_text_never_becomes_a_formula(sandbox, apps, client) -> None:
    s = Story(providers={'=HYPERLINK("http://x")': uuid.uuid4()}).define()
    s.referral("2024-01-05", local_authority='=HYPERLINK("http://x")')
    await feed(sandbox, await reporting(apps), s.events)
    params = {"as_of": "2024-12-31", "group_by": "local_authority"}
    rows = parse_csv(await download(client, "performance", s.code, "csv", **params))
    assert rows[1][0] == '\'=HYPERLINK("http://x")'
    _, workbook = sheet_rows(await download(client, "performance", s.code, "xlsx", **params))
    cell = workbook.worksheets[0]["A2"]
    assert cell.value == '=HYPERLINK("http://x")' and cell.data_type == "s"
