"""Attachment, the participant record, key-worker changes, exit and the caseload list."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.casework import events
from services.casework.api.deps import (
    ProviderDep,
    ReaderDep,
    now,
    outbox_of,
    visible_participant,
)
from services.casework.api.models import (
    NO_NUL,
    AttachmentIn,
    CaseloadEntry,
    EpisodeOut,
    ExitIn,
    KeyWorkerAssignment,
    KeyWorkerIn,
    LastSession,
    ParticipantOut,
    ParticipantPage,
    PersonOut,
)
from services.casework.domain import (
    Attachment,
    AttachmentOutcome,
    AttachmentState,
    ParticipantStatus,
    days_without_contact,
    decide_attachment,
    exit_conflict,
    lacks_contact,
    not_attachable,
    referral_decided,
    uk_today,
)
from services.casework.store import attachments as attachment_store
from services.casework.store import participants as participant_store
from services.casework.store import referrals as referral_store
from shared.caller import Caller
from shared.consistency import wait_for
from shared.db import SessionDep
from shared.errors import FieldError, PathId, Problem, conflict, not_found, problem, unprocessable
from shared.logging import get_logger
from shared.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["casework"])
log = get_logger(__name__)

MAX_PAGE = 500


# --- rendering ---------------------------------------------------------------------


def episode_out(row: Row[Any]) -> EpisodeOut:
    return EpisodeOut(
        id=row.id,
        employer=row.employer,
        started_on=row.started_on,
        ended_on=row.ended_on,
        hours_per_week=float(row.hours_per_week),
        weekly_earnings_pence=row.weekly_earnings_pence,
        self_employed=row.self_employed,
    )


def _participant_fields(
    row: Row[Any], episodes: list[Row[Any]], person: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": row.id,
        "referral_id": row.referral_id,
        "programme": row.programme,
        "provider_id": row.provider_id,
        "attached_on": row.attached_on,
        "key_worker": row.key_worker,
        "status": row.status,
        "employment": [episode_out(e) for e in episodes],
        "left_on": row.left_on,
        "exit_reason": row.exit_reason,
        "referred_on": row.referred_on,
        "person": PersonOut.model_validate(person) if person else None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


async def render_participant(
    session: AsyncSession, caller: Caller, row: Row[Any]
) -> ParticipantOut:
    episodes = await participant_store.episodes_of(session, [row.id])
    # The person's details are the provider's own record; the programme office
    # oversees casework without them (data minimisation).
    people = (
        await referral_store.person_details(session, [row.referral_id])
        if caller.partner_id == row.provider_id
        else {}
    )
    history = await participant_store.key_worker_history(session, row.id)
    return ParticipantOut(
        **_participant_fields(row, episodes[row.id], people.get(row.referral_id)),
        key_worker_history=[
            KeyWorkerAssignment(key_worker=h.key_worker, assigned_on=h.assigned_on) for h in history
        ],
    )


# --- attachment --------------------------------------------------------------------


@router.post(
    "/v1/participants",
    status_code=201,
    response_model=ParticipantOut,
    summary="Attach a referred person to the provider",
    responses={
        200: {"model": ParticipantOut, "description": "The same attachment again (a retry)."},
        403: problem("Only providers attach participants."),
        404: problem("No accepted referral routed to this provider."),
        409: problem("Withdrawn, declined, or already attached differently."),
        422: problem("Invalid body, or attached_on before referred_on."),
        503: problem("The attachment is not confirmed yet; retry the same request."),
    },
)
async def attach(
    body: AttachmentIn,
    caller: ProviderDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> ParticipantOut:
    if body.attached_on > uk_today(now()):
        raise unprocessable(FieldError("attached_on", "must not be in the future"))
    platform = request.app.state.runtime.settings.platform

    async def decided_referral() -> Any:
        try:
            facts = await referral_store.referral_facts(session, body.referral_id)
        finally:
            # Nothing is written yet: end the read and hand the connection back while
            # waiting, since the consumer storing the news we wait for draws on the same
            # pool (a burst of waiting attachments would otherwise starve it).
            await session.rollback()
        return facts if facts and referral_decided(facts.status, facts.provider_id) else None

    # Contract §8: a referral the partner has seen accepted may not have reached us yet.
    await wait_for(decided_referral, timeout=platform.consistency_wait_seconds)
    # Locking the referral serialises attachments of it (and its status events).
    facts = await referral_store.referral_facts(session, body.referral_id, lock=True)
    request_attachment = Attachment(body.referral_id, body.attached_on, body.key_worker)
    existing = await participant_store.participant_for_referral(session, body.referral_id)
    asked = await attachment_store.attachment_request(session, body.referral_id)
    decision = decide_attachment(
        caller.partner_id,
        request_attachment,
        facts,
        participant_store.existing_attachment(existing) if existing else None,
        attachment_store.as_request(asked) if asked else None,
    )
    if decision.outcome is AttachmentOutcome.NOT_FOUND:
        raise not_found("referral")
    if decision.outcome is AttachmentOutcome.CONFLICT:
        raise conflict(decision.detail)
    if decision.outcome is AttachmentOutcome.INVALID:
        raise unprocessable(FieldError(decision.field or "body", decision.detail))
    if decision.outcome is AttachmentOutcome.ALREADY_ATTACHED:
        assert existing is not None
        response.status_code = 200
        return await render_participant(session, caller, existing)

    # Referrals owns the referral's status, and a withdrawal it answered a moment ago
    # may not be in our copy yet: ask it, and answer on its answer.
    if decision.outcome is AttachmentOutcome.REQUEST:
        assert facts is not None
        participant_id = uuid.uuid4()
        asked = await attachment_store.insert_request(
            session,
            participant_id=participant_id,
            referral_id=facts.referral_id,
            programme=facts.programme,
            provider_id=caller.partner_id,
            referred_on=facts.referred_on,
            attached_on=body.attached_on,
            key_worker=body.key_worker,
        )
        await outbox_of(request).add(
            session, events.attachment_requested(asked), aggregate_id=participant_id
        )
        await session.commit()
    else:
        # The same attachment is already asked for (a retry, or two at once): its
        # answer is this one's too.
        await session.rollback()
        response.status_code = 200
    answered = await _answer_of(session, body.referral_id, platform.consistency_wait_seconds)
    if answered is None:
        # Referrals is slow or down. The request stands and is settled when it answers;
        # the same attachment, retried, then gets the outcome.
        raise Problem(
            503,
            "The referral's attachment is not confirmed yet; retry the same request shortly.",
            headers={"Retry-After": "2"},
        )
    if answered.state == AttachmentState.REFUSED:
        raise conflict(not_attachable(answered.refused_as).detail)
    row = await participant_store.participant(session, answered.participant_id)
    assert row is not None  # created in the transaction that recorded the grant
    rendered = await render_participant(session, caller, row)
    await session.rollback()
    response.headers["Location"] = f"/v1/participants/{row.id}"
    return rendered


async def _answer_of(session: AsyncSession, referral_id: uuid.UUID, timeout: float) -> Any:
    """Wait for referrals to answer the attachment asked of it (contract §8: briefly)."""

    async def answered() -> Any:
        try:
            asked = await attachment_store.attachment_request(session, referral_id)
        finally:
            await session.rollback()  # hand the connection back while waiting
        return asked if asked is not None and asked.state != AttachmentState.REQUESTED else None

    # The answer is two events' trip away (tens of ms): look often at first, so the
    # poll does not add more than the trip itself (0.05 s made an attachment 69 ms
    # where 5 ms makes it 47, measured one after another).
    return await wait_for(answered, timeout=timeout, interval=0.005)


# --- reading -----------------------------------------------------------------------


@router.get(
    "/v1/participants/{participant_id}",
    response_model=ParticipantOut,
    summary="One participant",
    responses={
        403: problem("Referrers do not see casework."),
        404: problem("No such participant."),
    },
)
async def get_participant(
    participant_id: PathId, caller: ReaderDep, session: SessionDep
) -> ParticipantOut:
    row = await visible_participant(session, caller, participant_id)
    return await render_participant(session, caller, row)


@router.get(
    "/v1/participants",
    response_model=ParticipantPage,
    summary="Participants and the caseload view",
    description=(
        "A provider's participants (the programme office sees every provider's), in "
        "attachment order, each with its last attended session. With "
        "`no_contact_days=N` it is the key workers' caseload: only active participants "
        "(unless `status` says otherwise), each flagged `no_recent_contact` when there "
        "has been no attended contact for N days or more (counted from attachment "
        "before the first session); `only_flagged=true` lists just those."
    ),
    responses={403: problem("Referrers do not see casework."), 422: problem("Bad query.")},
)
async def list_participants(
    caller: ReaderDep,
    session: SessionDep,
    programme: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    key_worker: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    status: ParticipantStatus | None = None,
    provider_id: Annotated[
        uuid.UUID | None, Query(description="Programme office: one provider's participants.")
    ] = None,
    no_contact_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    only_flagged: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: str | None = None,
) -> ParticipantPage:
    if only_flagged and no_contact_days is None:
        raise unprocessable(FieldError("only_flagged", "needs no_contact_days"))
    if caller.is_provider:
        if provider_id is not None and provider_id != caller.partner_id:
            # Another provider's caseload is not the caller's to see: an empty list.
            return ParticipantPage(items=[], next_cursor=None)
        provider_id = caller.partner_id
    if no_contact_days is not None and status is None:
        status = ParticipantStatus.ACTIVE
    today = uk_today(now())
    after = decode_cursor(cursor, types=(date, uuid.UUID)) if cursor else None
    rows = await participant_store.caseload(
        session,
        participant_store.CaseloadQuery(
            provider_id=provider_id,
            programme=programme,
            key_worker=key_worker.strip() if key_worker else None,
            status=status,
            contact_on_or_before=(
                date.fromordinal(today.toordinal() - no_contact_days)
                if only_flagged and no_contact_days is not None
                else None
            ),
            after=after,  # type: ignore[arg-type]
            limit=limit + 1,
        ),
    )
    page, more = rows[:limit], len(rows) > limit
    episodes = await participant_store.episodes_of(session, [r.id for r in page])
    people = await referral_store.person_details(
        session, [r.referral_id for r in page if r.provider_id == caller.partner_id]
    )
    items = []
    for row in page:
        days = days_without_contact(row.last_attended_at, row.attached_on, today)
        items.append(
            CaseloadEntry(
                **_participant_fields(row, episodes[row.id], people.get(row.referral_id)),
                last_attended_at=row.last_attended_at,
                last_attended_session=(
                    LastSession(
                        external_id=row.last_session_external_id,
                        occurred_at=row.last_attended_at,
                        kind=row.last_session_kind,
                        duration_minutes=row.last_session_minutes,
                    )
                    if row.last_attended_at is not None
                    else None
                ),
                days_without_contact=days,
                no_recent_contact=(
                    lacks_contact(days, no_contact_days) if no_contact_days is not None else None
                ),
            )
        )
    next_cursor = encode_cursor(page[-1].attached_on, page[-1].id) if more else None
    return ParticipantPage(items=items, next_cursor=next_cursor)


# --- changes -----------------------------------------------------------------------


@router.post(
    "/v1/participants/{participant_id}/exit",
    response_model=ParticipantOut,
    summary="Record that the participant left the programme",
    responses={
        403: problem("Only the participant's provider records an exit."),
        404: problem("No such participant."),
        409: problem("Already exited with a different date or reason."),
        422: problem("Invalid body, or left_on before attached_on or in the future."),
    },
)
async def exit_participant(
    participant_id: PathId, body: ExitIn, caller: ProviderDep, session: SessionDep, request: Request
) -> ParticipantOut:
    row = await visible_participant(session, caller, participant_id, lock=True)
    if body.left_on < row.attached_on:
        raise unprocessable(
            FieldError("left_on", f"must be on or after attached_on ({row.attached_on})")
        )
    if body.left_on > uk_today(now()):
        raise unprocessable(FieldError("left_on", "must not be in the future"))
    clash = exit_conflict(row.status, row.left_on, row.exit_reason, body.left_on, body.reason)
    if clash is not None:
        raise conflict(clash)
    if row.status == ParticipantStatus.ACTIVE:
        await participant_store.record_exit(
            session, row.id, left_on=body.left_on, reason=body.reason
        )
        row = await participant_store.participant(session, row.id)
        assert row is not None
        await outbox_of(request).add(session, events.participant_exited(row), aggregate_id=row.id)
        log.info("participant exited", participant_id=str(row.id))
    rendered = await render_participant(session, caller, row)
    await session.commit()
    return rendered


@router.post(
    "/v1/participants/{participant_id}/key-worker",
    response_model=ParticipantOut,
    summary="Hand the participant to another key worker",
    responses={
        403: problem("Only the participant's provider reassigns key workers."),
        404: problem("No such participant."),
        409: problem("The participant has exited."),
        422: problem("Invalid body or date."),
    },
)
async def reassign_key_worker(
    participant_id: PathId, body: KeyWorkerIn, caller: ProviderDep, session: SessionDep
) -> ParticipantOut:
    row = await visible_participant(session, caller, participant_id, lock=True)
    if row.status != ParticipantStatus.ACTIVE:
        raise conflict("The participant has exited; their key worker can no longer change.")
    today = uk_today(now())
    assigned_on = body.assigned_on or today
    history = await participant_store.key_worker_history(session, row.id)
    since = max([h.assigned_on for h in history] + [row.attached_on])
    if assigned_on > today:
        raise unprocessable(FieldError("assigned_on", "must not be in the future"))
    if assigned_on < since:
        raise unprocessable(
            FieldError("assigned_on", f"must be on or after the last assignment ({since})")
        )
    if body.key_worker != row.key_worker:
        await participant_store.reassign_key_worker(
            session, row.id, key_worker=body.key_worker, assigned_on=assigned_on
        )
        row = await participant_store.participant(session, row.id)
        assert row is not None
    rendered = await render_participant(session, caller, row)
    await session.commit()
    return rendered
