"""Barrier assessments and employment episodes of a participant."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Row

from services.casework import events
from services.casework.api.deps import (
    ProviderDep,
    ReaderDep,
    now,
    outbox_of,
    parse_id,
    visible_participant,
)
from services.casework.api.models import (
    AssessmentIn,
    AssessmentList,
    AssessmentOut,
    EpisodeEndIn,
    EpisodeIn,
    EpisodeOut,
)
from services.casework.api.participants import episode_out
from services.casework.domain import after_exit, end_conflict, severe_barriers, uk_today
from services.casework.store import participants as participant_store
from shared.db import SessionDep
from shared.errors import FieldError, PathId, conflict, not_found, problem, unprocessable
from shared.logging import get_logger

router = APIRouter(tags=["casework"])
log = get_logger(__name__)


def _not_future(field: str, day: date) -> FieldError | None:
    if day > uk_today(now()):
        return FieldError(field, "must not be in the future")
    return None


def _raise_if(*errors: FieldError | None) -> None:
    found = [e for e in errors if e is not None]
    if found:
        raise unprocessable(*found)


# --- assessments -------------------------------------------------------------------


def assessment_out(row: Row[Any]) -> AssessmentOut:
    return AssessmentOut(
        id=row.id,
        participant_id=row.participant_id,
        kind=row.kind,
        assessed_on=row.assessed_on,
        barriers=row.barriers,
        wellbeing=row.wellbeing,
        severe_barriers=severe_barriers(row.barriers),
        created_at=row.created_at,
    )


@router.post(
    "/v1/participants/{participant_id}/assessments",
    status_code=201,
    response_model=AssessmentOut,
    summary="Record a barrier assessment",
    description=(
        "`assessed_on` falls between attachment and today (and not after the "
        "participant left). Send only the barriers scored, at least one."
    ),
    responses={
        403: problem("Only the participant's provider records assessments."),
        404: problem("No such participant."),
        409: problem("The participant already has an initial assessment."),
        422: problem("Invalid body: unknown barrier, score outside 0..6, bad date."),
    },
)
async def record_assessment(
    participant_id: PathId,
    body: AssessmentIn,
    caller: ProviderDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> AssessmentOut:
    participant = await visible_participant(session, caller, participant_id, lock=True)
    scores = body.scores()
    _raise_if(
        None if scores else FieldError("barriers", "score at least one barrier"),
        _not_future("assessed_on", body.assessed_on),
        (
            FieldError(
                "assessed_on", f"must be on or after attached_on ({participant.attached_on})"
            )
            if body.assessed_on < participant.attached_on
            else None
        ),
        (
            FieldError(
                "assessed_on", f"must not be after the participant left ({participant.left_on})"
            )
            if after_exit(participant.left_on, body.assessed_on)
            else None
        ),
    )
    if body.kind == "initial" and await participant_store.has_initial_assessment(
        session, participant.id
    ):
        raise conflict("The participant already has an initial assessment.")
    row = await participant_store.insert_assessment(
        session,
        assessment_id=uuid.uuid4(),
        participant_id=participant.id,
        kind=body.kind,
        assessed_on=body.assessed_on,
        barriers=scores,
        wellbeing=body.wellbeing,
    )
    if row is None:  # a concurrent request recorded the initial assessment first
        raise conflict("The participant already has an initial assessment.")
    await outbox_of(request).add(
        session, events.assessment_recorded(participant, row), aggregate_id=participant.id
    )
    await session.commit()
    log.info("assessment recorded", participant_id=str(participant.id), kind=row.kind)
    response.headers["Location"] = f"/v1/participants/{participant.id}/assessments/{row.id}"
    return assessment_out(row)


@router.get(
    "/v1/participants/{participant_id}/assessments",
    response_model=AssessmentList,
    summary="A participant's assessments, oldest first",
    responses={
        403: problem("Referrers do not see casework."),
        404: problem("No such participant."),
    },
)
async def list_assessments(
    participant_id: PathId, caller: ReaderDep, session: SessionDep
) -> AssessmentList:
    participant = await visible_participant(session, caller, participant_id)
    rows = await participant_store.assessments_of(session, participant.id)
    return AssessmentList(items=[assessment_out(r) for r in rows])


@router.get(
    "/v1/participants/{participant_id}/assessments/{assessment_id}",
    response_model=AssessmentOut,
    summary="One assessment",
    responses={403: problem("Referrers do not see casework."), 404: problem("No such assessment.")},
)
async def get_assessment(
    participant_id: PathId, assessment_id: PathId, caller: ReaderDep, session: SessionDep
) -> AssessmentOut:
    participant = await visible_participant(session, caller, participant_id)
    wanted = parse_id(assessment_id, "assessment")
    for row in await participant_store.assessments_of(session, participant.id):
        if row.id == wanted:
            return assessment_out(row)
    raise not_found("assessment")


# --- employment --------------------------------------------------------------------


def _hours(value: float) -> Decimal:
    # Stored to the hundredth of an hour (numeric(5,2)); say so by rounding here.
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@router.post(
    "/v1/participants/{participant_id}/employment",
    status_code=201,
    response_model=EpisodeOut,
    summary="Record a job (or self-employment) the participant started",
    description=(
        "Episodes may overlap or leave gaps. `started_on` is between the referral date "
        "and today (and not after the participant left); `ended_on` may be sent at once "
        "for a job that has already ended."
    ),
    responses={
        403: problem("Only the participant's provider records employment."),
        404: problem("No such participant."),
        422: problem("Invalid body or dates."),
    },
)
async def start_employment(
    participant_id: PathId,
    body: EpisodeIn,
    caller: ProviderDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> EpisodeOut:
    participant = await visible_participant(session, caller, participant_id, lock=True)
    hours = _hours(body.hours_per_week)
    _raise_if(
        _not_future("started_on", body.started_on),
        (
            FieldError(
                "started_on", f"must be on or after the referral date ({participant.referred_on})"
            )
            if body.started_on < participant.referred_on
            else None
        ),
        (
            FieldError(
                "started_on", f"must not be after the participant left ({participant.left_on})"
            )
            if after_exit(participant.left_on, body.started_on)
            else None
        ),
        FieldError("hours_per_week", "must be at least 0.01") if hours <= 0 else None,
        *(
            [
                _not_future("ended_on", body.ended_on),
                (
                    FieldError("ended_on", "must be on or after started_on")
                    if body.ended_on < body.started_on
                    else None
                ),
            ]
            if body.ended_on is not None
            else []
        ),
    )
    row = await participant_store.insert_episode(
        session,
        episode_id=uuid.uuid4(),
        participant_id=participant.id,
        employer=body.employer,
        started_on=body.started_on,
        ended_on=body.ended_on,
        hours_per_week=hours,
        weekly_earnings_pence=body.weekly_earnings_pence,
        self_employed=body.self_employed,
    )
    outbox = outbox_of(request)
    await outbox.add(
        session, events.employment_started(participant, row), aggregate_id=participant.id
    )
    if row.ended_on is not None:
        await outbox.add(
            session, events.employment_ended(participant, row), aggregate_id=participant.id
        )
    await session.commit()
    log.info("employment started", participant_id=str(participant.id), episode_id=str(row.id))
    response.headers["Location"] = f"/v1/participants/{participant.id}/employment/{row.id}"
    return episode_out(row)


@router.get(
    "/v1/participants/{participant_id}/employment/{episode_id}",
    response_model=EpisodeOut,
    summary="One employment episode",
    responses={403: problem("Referrers do not see casework."), 404: problem("No such episode.")},
)
async def get_episode(
    participant_id: PathId, episode_id: PathId, caller: ReaderDep, session: SessionDep
) -> EpisodeOut:
    participant = await visible_participant(session, caller, participant_id)
    row = await participant_store.episode(session, participant.id, parse_id(episode_id, "episode"))
    if row is None:
        raise not_found("employment episode")
    return episode_out(row)


@router.post(
    "/v1/participants/{participant_id}/employment/{episode_id}/end",
    response_model=EpisodeOut,
    summary="Record the last day in work of an episode",
    description=(
        "`ended_on` is the last day in work (inclusive). Ending an episode again with "
        "the same date is a harmless retry; with another date it is `409`. An episode "
        "may end after the participant exited (in-work support goes on)."
    ),
    responses={
        403: problem("Only the participant's provider ends episodes."),
        404: problem("No such participant or episode."),
        409: problem("The episode already ended on another date."),
        422: problem("Invalid body, or ended_on before started_on or in the future."),
    },
)
async def end_employment(
    participant_id: PathId,
    episode_id: PathId,
    body: EpisodeEndIn,
    caller: ProviderDep,
    session: SessionDep,
    request: Request,
) -> EpisodeOut:
    # The participant's lock, as every employment change takes it: outcomes' question
    # about the participant's employment waits on it, so its answer cannot read the
    # episode as running while this end is uncommitted (and then outrank the end).
    participant = await visible_participant(session, caller, participant_id, lock=True)
    row = await participant_store.episode(
        session, participant.id, parse_id(episode_id, "episode"), lock=True
    )
    if row is None:
        raise not_found("employment episode")
    _raise_if(
        _not_future("ended_on", body.ended_on),
        (
            FieldError("ended_on", f"must be on or after started_on ({row.started_on})")
            if body.ended_on < row.started_on
            else None
        ),
    )
    clash = end_conflict(row.ended_on, body.ended_on)
    if clash is not None:
        raise conflict(clash)
    if row.ended_on is None:
        row = await participant_store.end_episode(session, row.id, body.ended_on)
        await outbox_of(request).add(
            session, events.employment_ended(participant, row), aggregate_id=participant.id
        )
        log.info("employment ended", participant_id=str(participant.id), episode_id=str(row.id))
    await session.commit()
    return episode_out(row)
