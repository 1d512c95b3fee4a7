"""Payment statements (§5): a provider's accruals for one programme and month."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from services.outcomes import domain, store
from services.outcomes.api.deps import ReaderDep, SettingsDep, wait_for_programme
from services.outcomes.api.models import StatementOut
from shared.db import SessionDep
from shared.errors import FieldError, not_found, problem, unprocessable

router = APIRouter(tags=["payments"])


@router.get(
    "/v1/payments/statement",
    response_model=StatementOut,
    summary="A provider's payment statement for a programme and month",
    description="Every ledger line of the provider in the programme whose accrued_on falls "
    "in the period, sorted by accrued_on, then kind, then the order they were recorded; "
    "total_pence is the sum of exactly those lines. A provider gets its own statement "
    "(provider_id, if given, must be its own); the programme office names the provider.",
    responses={
        403: problem("Referrers have no statements."),
        404: problem("A provider asked for another provider's statement."),
        422: problem("Missing or malformed programme, period or provider_id."),
    },
)
async def statement(
    caller: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    programme: Annotated[str, Query(min_length=1, max_length=100)],
    period: Annotated[str, Query(description="A month, YYYY-MM.")],
    provider_id: uuid.UUID | None = None,
) -> Response:
    try:
        start, end = domain.parse_period(period)
    except ValueError as exc:
        raise unprocessable(FieldError("period", str(exc))) from None
    if caller.is_programme_office:
        if provider_id is None:
            raise unprocessable(
                FieldError("provider_id", "is required when the programme office asks")
            )
        whose = provider_id
    else:
        if provider_id is not None and provider_id != caller.partner_id:
            raise not_found("statement")
        whose = caller.partner_id
    await wait_for_programme(session, settings, programme)
    # One query: the lines and their total can never disagree.
    rows = await store.statement_lines(
        session, provider_id=whose, programme=programme, start=start, end=end
    )
    lines = [
        {
            "kind": row.kind,
            "participant_id": row.participant_id,
            "claim_id": row.claim_id,
            "amount_pence": row.amount_pence,
            "accrued_on": row.accrued_on,
            "line_id": row.id,
        }
        for row in rows
    ]
    body = {
        "provider_id": whose,
        "programme": programme,
        "period": period,
        "lines": lines,
        "total_pence": domain.statement_total(line["amount_pence"] for line in lines),
    }
    # Thousands of lines: serialised straight from the rows (the shape is StatementOut).
    # (asyncpg hands back its own UUID type, which orjson leaves to ``default``.)
    return Response(orjson.dumps(body, default=str), media_type="application/json")
