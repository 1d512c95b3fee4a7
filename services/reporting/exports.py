"""Reports as downloads: CSV and a real spreadsheet (contract §6 ``?format=``).

Both carry exactly the JSON rows, flattened to a table whose header row is the field
names; ``null`` is an empty field (CSV) or an empty cell (XLSX). Flat shapes:

* performance: ``key, referrals, accepted, attachments, attachment_rate, job_starts,
  job_start_rate, sustained, sustainment_eligible, sustainment_rate, accrued_pence``;
* cohorts: ``cohort, attachments, m1 … m24`` (``mN`` = ``job_start_rate_by_month[N-1]``);
* barriers: ``barrier, scored, severe_at_attachment, severe_share, reviewed, improved,
  improved_rate, mean_severe_at_attachment, mean_severe_at_latest_review`` (the two
  means, report-wide, repeated on every row).

Text cells come from partners' input (local authority names), so in CSV a value that
a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or CR)
is prefixed with ``'``; in XLSX every text cell is written as a string, never a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import xlsxwriter
from starlette.responses import Response

ColumnKind = Literal["text", "count", "rate", "pence"]

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    """One report flattened: column names, what each holds, and the rows."""

    name: str  # report name, also the sheet name
    columns: Sequence[tuple[str, ColumnKind]]
    rows: Sequence[Sequence[Any]]
    about: Sequence[tuple[str, str]]  # report parameters, for the spreadsheet's notes

    def filename(self, programme: str, as_of: str, extension: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", programme)[:80] or "programme"
        return f"{self.name}-{safe}-{as_of}.{extension}"


def _csv_value(value: Any, kind: ColumnKind) -> str:
    if value is None:
        return ""
    if kind == "rate":
        return repr(float(value))  # as the JSON shows it: 0.0129
    if kind == "text":
        text = str(value)
        return "'" + text if text.startswith(_FORMULA_START) else text
    return str(int(value))


def csv_bytes(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in table.columns])
    for row in table.rows:
        writer.writerow(
            [_csv_value(v, kind) for v, (_, kind) in zip(row, table.columns, strict=True)]
        )
    return out.getvalue().encode("utf-8")


def xlsx_bytes(table: Table) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    header = workbook.add_format({"bold": True, "bottom": 1})
    formats = {
        "rate": workbook.add_format({"num_format": "0.00%"}),
        "count": workbook.add_format({"num_format": "#,##0"}),
        "pence": workbook.add_format({"num_format": "#,##0"}),
    }
    sheet = workbook.add_worksheet(table.name[:31])
    for col, (name, kind) in enumerate(table.columns):
        sheet.write_string(0, col, name, header)
        width = max(len(name), 24 if kind == "text" else 10) + 2
        sheet.set_column(col, col, width)
    for r, row in enumerate(table.rows, start=1):
        for col, (value, (_, kind)) in enumerate(zip(row, table.columns, strict=True)):
            if value is None:
                continue  # null: an empty cell
            if kind == "text":
                sheet.write_string(r, col, str(value))
            elif kind == "rate":
                sheet.write_number(r, col, float(Decimal(value)), formats["rate"])
            else:
                sheet.write_number(r, col, int(value), formats[kind])
    sheet.freeze_panes(1, 0)
    if table.rows:
        sheet.autofilter(0, 0, len(table.rows), len(table.columns) - 1)
    notes = workbook.add_worksheet("about")
    notes.set_column(0, 0, 24)
    notes.set_column(1, 1, 60)
    about = [*table.about, ("generated_at", datetime.now(UTC).isoformat(timespec="seconds"))]
    for r, (name, value) in enumerate(about):
        notes.write_string(r, 0, name, header)
        notes.write_string(r, 1, value)
    workbook.close()
    return buffer.getvalue()


def download(table: Table, fmt: Literal["csv", "xlsx"], *, programme: str, as_of: str) -> Response:
    if fmt == "csv":
        body, media_type = csv_bytes(table), CSV_TYPE
    else:
        body, media_type = xlsx_bytes(table), XLSX_TYPE
    filename = table.filename(programme, as_of, fmt)
    return Response(
        content=body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
