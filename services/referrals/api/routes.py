"""Routes: intake, reading, withdraw and decline (contract §2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.referrals import access, lifecycle, store
from services.referrals.api.models import (
    ReasonIn,
    ReferralIn,
    ReferralOut,
    ReferralPage,
)
from services.referrals.domain import (
    DECLINE,
    WITHDRAW,
    Status,
    Submission,
    Transition,
    date_problems,
    today_uk,
)
from services.referrals.settings import ReferralsSettings
from shared.caller import Caller, CallerDep, PartnerKind, require_kind
from shared.db import SessionDep
from shared.errors import FieldError, PathId, not_found, parse_id, problem, unprocessable
from shared.outbox import Outbox
from shared.pagination import decode_cursor, encode_cursor
from shared.service import ServiceRuntime

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

PROGRAMME_CACHE = "programme_cache"


async def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def _outbox(runtime: ServiceRuntime) -> Outbox:
    assert runtime.outbox is not None
    return runtime.outbox


# Kind checks run as dependencies, so they answer 403 before the body is even validated.
async def _submitter(caller: CallerDep) -> Caller:
    require_kind(caller, *access.SUBMITTERS)
    return caller


async def _withdrawer(caller: CallerDep) -> Caller:
    require_kind(caller, *access.WITHDRAWERS)
    return caller


async def _decliner(caller: CallerDep) -> Caller:
    require_kind(caller, PartnerKind.PROVIDER)
    return caller


UNAUTHORISED = problem("Not signed by the gateway")

_POST_RESPONSES = {
    200: {"model": ReferralOut, "description": "A retry: the referral already stored"},
    401: UNAUTHORISED,
    403: problem("The partner's kind may not post referrals"),
    409: problem("The external_ref or Idempotency-Key was used for a different referral"),
    422: problem("Invalid fields, or consent not given; nothing stored"),
}


@router.post(
    "",
    status_code=201,
    response_model=ReferralOut,
    responses=_POST_RESPONSES,
    summary="Post a referral",
)
async def submit_referral(
    body: ReferralIn,
    runtime: RuntimeDep,
    caller: Annotated[Caller, Depends(_submitter)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Optional: a retry with the same key and body returns the same referral",
        ),
    ] = None,
) -> Response:
    submission = body.to_submission()
    problems = _date_problems(submission)
    if problems:
        raise unprocessable(*problems)
    settings: ReferralsSettings = runtime.settings  # type: ignore[assignment]
    # The busiest route: its session is opened here, not by a dependency (FastAPI's
    # generator-dependency machinery costs more than the session), and the answer is
    # serialised once, not validated again against the response model.
    async with runtime.session_factory() as session:
        result = await lifecycle.submit(
            session,
            runtime.engine,
            _outbox(runtime),
            runtime.extras[PROGRAMME_CACHE],
            referrer_id=caller.partner_id,
            source=access.source_of(caller),
            submission=submission,
            idempotency_key=idempotency_key,
            programme_wait_seconds=settings.programme_wait,
        )
    referral = result.referral
    return Response(
        ReferralOut.of(referral).model_dump_json(),
        status_code=201 if result.created else 200,
        headers={"Location": f"/v1/referrals/{referral.id}"} if result.created else None,
        media_type="application/json",
    )


def _date_problems(submission: Submission) -> list[FieldError]:
    today = today_uk()
    return [
        FieldError(field, message)
        for field, message in date_problems(
            referred_on=submission.referred_on or today,
            date_of_birth=submission.person.date_of_birth,
            consent_recorded_on=submission.consent.recorded_on,
            today=today,
        )
    ]


@router.get(
    "",
    response_model=ReferralPage,
    responses={401: UNAUTHORISED, 422: problem("Invalid filter, limit or cursor")},
    summary="List the referrals the caller may see, most recently received first",
)
async def list_referrals(
    caller: CallerDep,
    session: SessionDep,
    status: Status | None = None,
    programme: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    updated_since: Annotated[
        datetime | None,
        Query(description="Only referrals whose status changed at or after this time"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReferralPage:
    if updated_since is not None and updated_since.utcoffset() is None:
        raise unprocessable(
            FieldError("updated_since", "must be a timestamp with a UTC offset, e.g. +00:00")
        )
    after = decode_cursor(cursor, types=[datetime, uuid.UUID]) if cursor else None
    records = await store.list_referrals(
        session,
        visibility=access.visibility(caller),
        status=status,
        programme=programme,
        updated_since=updated_since,
        after=after,  # type: ignore[arg-type]
        limit=limit + 1,
    )
    page, more = records[:limit], len(records) > limit
    next_cursor = encode_cursor(page[-1].received_at, page[-1].id) if more else None
    return ReferralPage(items=[ReferralOut.of(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/{referral_id}",
    response_model=ReferralOut,
    responses={401: UNAUTHORISED, 404: problem("No such referral, or not the caller's")},
    summary="One referral",
)
async def get_referral(referral_id: PathId, caller: CallerDep, session: SessionDep) -> ReferralOut:
    referral = await store.get_referral(session, parse_id(referral_id, "referral"))
    if referral is None or not access.can_see(caller, referral):
        raise not_found("referral")
    return ReferralOut.of(referral)


_MOVE_RESPONSES = {
    401: UNAUTHORISED,
    403: problem("The partner's kind may never take this action"),
    404: problem("No such referral, or not one the caller made (withdraw) or is sent (decline)"),
    409: problem("The referral is no longer received or accepted"),
    422: problem("The reason is missing or invalid"),
}


async def _move(
    referral_id: PathId,
    body: ReasonIn,
    caller: Caller,
    session: SessionDep,
    runtime: ServiceRuntime,
    transition: Transition,
) -> ReferralOut:
    referral = await store.get_referral(session, parse_id(referral_id, "referral"), for_update=True)
    if referral is None or not access.can_see(caller, referral):
        raise not_found("referral")
    if transition is WITHDRAW:
        access.check_may_withdraw(caller, referral)
    else:
        access.check_may_decline(caller, referral)
    updated = await lifecycle.move(
        session, _outbox(runtime), referral, transition, reason=body.reason
    )
    return ReferralOut.of(updated)


@router.post(
    "/{referral_id}/withdraw",
    response_model=ReferralOut,
    responses=_MOVE_RESPONSES,
    summary="The partner that made the referral withdraws it",
)
async def withdraw_referral(
    referral_id: PathId,
    body: ReasonIn,
    session: SessionDep,
    runtime: RuntimeDep,
    caller: Annotated[Caller, Depends(_withdrawer)],
) -> ReferralOut:
    return await _move(referral_id, body, caller, session, runtime, WITHDRAW)


@router.post(
    "/{referral_id}/decline",
    response_model=ReferralOut,
    responses=_MOVE_RESPONSES,
    summary="The provider records that the person declined or did not attend",
)
async def decline_referral(
    referral_id: PathId,
    body: ReasonIn,
    session: SessionDep,
    runtime: RuntimeDep,
    caller: Annotated[Caller, Depends(_decliner)],
) -> ReferralOut:
    return await _move(referral_id, body, caller, session, runtime, DECLINE)
