"""Outcome claims (§4): claiming, reading, the review decision and the audit sample."""

from __future__ import annotations

import uuid
from datetime import timedelta
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.outcomes import decisions, domain, store
from services.outcomes.api.deps import (
    ClaimantDep,
    OutboxDep,
    ProgrammeOfficeDep,
    ReaderDep,
    SettingsDep,
    checked_text,
    uk_today,
    wait_for_programme,
)
from services.outcomes.api.models import (
    AuditSampleOut,
    ClaimIn,
    ClaimOut,
    ClaimPage,
    DecisionIn,
    claim_out,
)
from shared.caller import Caller
from shared.db import SessionDep
from shared.errors import FieldError, PathId, conflict, not_found, parse_id, problem, unprocessable
from shared.events.outcomes import ParticipantFactsRequested
from shared.logging import get_logger
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["outcome claims"])
log = get_logger(__name__)

MAX_PAGE = 500
AUDIT_METHOD = (
    "Each validated claim of the programme whose achieved_on falls in the period is ranked "
    "by the SHA-256 hex digest of '<programme>:<period>:<claim id>'; the ceil(rate x "
    "population) lowest-ranked claims are the sample, in rank order."
)


@router.post(
    "/v1/outcome-claims",
    status_code=201,
    response_model=ClaimOut,
    summary="Claim an outcome",
    description="Stored `submitted` and decided shortly after, once the facts it rests on "
    "(attachment, employment episode, the job start's decision) have arrived; the decision "
    "and its record are on `GET /v1/outcome-claims/{id}`.",
    responses={
        403: problem("Only providers claim outcomes."),
        422: problem("Invalid body: e.g. a job_start without employment_id."),
    },
)
async def submit_claim(
    body: ClaimIn,
    caller: ClaimantDep,
    session: SessionDep,
    outbox: OutboxDep,
    settings: SettingsDep,
    response: Response,
) -> ClaimOut:
    now = decisions.utcnow()
    today = uk_today(now)
    evidence = body.evidence or []
    errors = []
    if body.type is domain.OutcomeType.JOB_START and body.employment_id is None:
        errors.append(FieldError("employment_id", "is required for a job_start claim"))
    if body.achieved_on > today:
        errors.append(FieldError("achieved_on", "must not be in the future"))
    for index, item in enumerate(evidence):
        if item.dated is not None and item.dated > today:
            errors.append(FieldError(f"evidence[{index}].dated", "must not be in the future"))
    if errors:
        raise unprocessable(*errors)

    # Serialises this claim with the participant's other claims and with the events that
    # may decide it (see store.lock_participant).
    await store.lock_participant(session, body.participant_id)
    if body.employment_id is not None:
        owner = await store.episode_owner(session, body.employment_id)
        if owner is not None and owner != body.participant_id:
            raise unprocessable(
                FieldError("employment_id", "is not an employment episode of this participant")
            )
    claim_id = uuid.uuid4()
    submitted = await store.insert_claim(
        session,
        store.NewClaim(
            id=claim_id,
            participant_id=body.participant_id,
            provider_id=caller.partner_id,
            type=body.type.value,
            achieved_on=body.achieved_on,
            employment_id=body.employment_id,
            evidence=[item.model_dump(mode="json") for item in evidence],
            submitted_at=now,
            facts_deadline=now + timedelta(seconds=settings.claim_facts_wait_seconds),
        ),
    )
    if domain.rests_on_employment(decisions.claim_of(submitted)):
        # An episode's change recorded just before this claim may still be on its way:
        # casework's answer, sent after the claim, brings the employment as it stands.
        await outbox.add(
            session,
            ParticipantFactsRequested(request_id=claim_id, participant_id=body.participant_id),
            aggregate_id=body.participant_id,
        )
    # Decided here and now if every fact it rests on is known; otherwise when they arrive.
    await decisions.settle_participant(session, outbox, body.participant_id, now=now)
    await session.commit()
    log.info("claim submitted", claim_id=str(claim_id), type=body.type.value)
    response.headers["Location"] = f"/v1/outcome-claims/{claim_id}"
    # The contract's answer to a claim is the claim as submitted (§4).
    return claim_out(submitted)


@router.get(
    "/v1/outcome-claims/audit-sample",
    response_model=AuditSampleOut,
    summary="A reproducible random sample of a period's validated claims",
    description=AUDIT_METHOD + " The same call over the same claims returns the same sample.",
    responses={
        403: problem("Only the programme office draws audit samples."),
        422: problem("Missing or malformed programme, period or rate."),
    },
)
async def audit_sample(
    caller: ProgrammeOfficeDep,
    session: SessionDep,
    settings: SettingsDep,
    programme: Annotated[str, Query(min_length=1, max_length=100)],
    period: Annotated[str, Query(description="A month, YYYY-MM (by achieved_on).")],
    rate: Annotated[float, Query(gt=0, le=1, description="Share of claims to check.")] = 0.1,
) -> AuditSampleOut:
    try:
        start, end = domain.parse_period(period)
    except ValueError as exc:
        raise unprocessable(FieldError("period", str(exc))) from None
    await wait_for_programme(session, settings, programme)
    # Rank the ids alone; only the sampled claims are read in full.
    population = await store.validated_claim_ids_achieved_between(session, programme, start, end)
    exact_rate = Fraction(str(rate))  # 0.1 is one in ten, not 0.1000000000000000055...
    sample = domain.audit_sample(programme, period, population, exact_rate)
    rows = await store.claims_by_id(session, sample)
    return AuditSampleOut(
        programme=programme,
        period=period,
        rate=rate,
        population=len(population),
        sample_size=len(sample),
        method=AUDIT_METHOD,
        items=[claim_out(rows[claim_id]) for claim_id in sample],
    )


@router.get(
    "/v1/outcome-claims",
    response_model=ClaimPage,
    summary="List outcome claims",
    description="Most recently submitted first. A provider sees its own claims; the programme "
    "office sees all.",
    responses={
        403: problem("Referrers do not see outcome claims."),
        422: problem("Malformed filter, limit or cursor."),
    },
)
async def list_claims(
    caller: ReaderDep,
    session: SessionDep,
    status: domain.ClaimStatus | None = None,
    participant_id: uuid.UUID | None = None,
    programme: Annotated[str | None, Query(max_length=100)] = None,
    type_: Annotated[domain.OutcomeType | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ClaimPage:
    before = decode_cursor(cursor, types=[int])[0] if cursor else None
    programme = checked_text(programme, "programme")
    rows = await store.list_claims(
        session,
        provider_id=None if caller.is_programme_office else caller.partner_id,
        status=status.value if status else None,
        participant_id=participant_id,
        programme=programme,
        type_=type_.value if type_ else None,
        before_seq=before,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ClaimPage(
        items=[claim_out(row) for row in rows],
        next_cursor=encode_cursor(rows[-1].seq) if more else None,
    )


@router.get(
    "/v1/outcome-claims/{claim_id}",
    response_model=ClaimOut,
    summary="An outcome claim, with its decision record",
    responses={
        403: problem("Referrers do not see outcome claims."),
        404: problem("No such claim visible to the caller."),
    },
)
async def get_claim(claim_id: PathId, caller: ReaderDep, session: SessionDep) -> ClaimOut:
    row = await _visible_claim(session, caller, claim_id)
    return claim_out(row)


@router.post(
    "/v1/outcome-claims/{claim_id}/decision",
    response_model=ClaimOut,
    summary="The programme office decides a claim in review",
    responses={
        403: problem("Only the programme office decides claims."),
        404: problem("No such claim."),
        409: problem("The claim is not in review."),
        422: problem("Invalid body."),
    },
)
async def decide_claim(
    claim_id: PathId,
    body: DecisionIn,
    caller: ProgrammeOfficeDep,
    session: SessionDep,
    outbox: OutboxDep,
) -> ClaimOut:
    row = await _visible_claim(session, caller, claim_id)
    await store.lock_participant(session, row.participant_id)
    row = await store.get_claim(session, row.id, for_update=True)
    assert row is not None
    if row.status != domain.ClaimStatus.REVIEW.value:
        raise conflict(f"Only a claim in review can be decided; this one is {row.status}.")
    await decisions.decide_review(
        session,
        outbox,
        row,
        decision=body.decision,
        reason=body.reason,
        partner_id=caller.partner_id,
    )
    decided = await store.get_claim(session, row.id)
    assert decided is not None
    await session.commit()
    return claim_out(decided)


async def _visible_claim(session: AsyncSession, caller: Caller, raw_id: str) -> Row[Any]:
    row = await store.get_claim(session, parse_id(raw_id, "outcome claim"))
    if row is None or not (caller.is_programme_office or row.provider_id == caller.partner_id):
        raise not_found("outcome claim")
    return row
