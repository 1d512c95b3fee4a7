"""``/admin/*``: partners and their API keys, programme definitions (contract §1).

Every route needs the admin token. Keys are shown once, when issued; only their
SHA-256 is stored. A key change reaches every gateway replica through NOTIFY (see
:mod:`services.gateway.auth`); this replica forgets the key before it answers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response
from sqlalchemy.exc import IntegrityError

from services.gateway import domain, store
from services.gateway.api.deps import AdminDep, GatewayDep
from services.gateway.api.models import (
    ApiKeyIssued,
    ApiKeyList,
    ApiKeyOut,
    KeyRotated,
    PartnerCreated,
    PartnerIn,
    PartnerList,
    PartnerOut,
    ProgrammeList,
    ProgrammeOut,
    RotateIn,
    problems,
)
from shared.db import SessionDep
from shared.errors import FieldError, conflict, not_found, unprocessable
from shared.events.gateway import ProgrammeDefined, ProviderArea
from shared.logging import get_logger
from shared.pagination import decode_cursor, encode_cursor

log = get_logger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])

_ADMIN_ERRORS = problems(401, 422)


def _key_status(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None:
        return "expired" if row.expires_at <= now else "expiring"
    return "active"


def _key_out(row: Any) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        partner_id=row.partner_id,
        prefix=row.prefix,
        status=_key_status(row, datetime.now(UTC)),  # type: ignore[arg-type]
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


async def _new_key(session: SessionDep, partner_id: uuid.UUID) -> tuple[Any, domain.IssuedKey]:
    """Store a fresh key; on the (one in trillions) chance its prefix is taken, another."""
    for _ in range(5):
        issued = domain.generate_api_key()
        try:
            async with session.begin_nested():
                row = await store.insert_key(
                    session, partner_id=partner_id, prefix=issued.prefix, digest=issued.digest
                )
        except IntegrityError:
            continue
        return row, issued
    raise RuntimeError("could not find a free key prefix")


def _issued(row: Any, token: str) -> ApiKeyIssued:
    return ApiKeyIssued(**_key_out(row).model_dump(), api_key=token)


# --- partners -------------------------------------------------------------------------


@router.post(
    "/partners",
    status_code=201,
    response_model=PartnerCreated,
    responses=_ADMIN_ERRORS,
    summary="Register a partner and issue its first API key",
)
async def create_partner(
    body: PartnerIn, session: SessionDep, gateway: GatewayDep, response: Response
) -> PartnerCreated:
    partner_id = uuid.uuid4()
    partner = await store.insert_partner(session, partner_id, body.name, body.kind.value)
    key, issued = await _new_key(session, partner_id)
    await session.commit()
    gateway.keys.forget(issued.prefix)
    log.info("partner created", partner_id=str(partner_id), kind=body.kind.value)
    response.headers["Location"] = f"/admin/partners/{partner_id}"
    return PartnerCreated(
        id=partner.id,
        name=partner.name,
        kind=partner.kind,
        created_at=partner.created_at,
        api_key=issued.token,
        key_id=key.id,
        key_prefix=issued.prefix,
    )


@router.get("/partners", response_model=PartnerList, responses=_ADMIN_ERRORS)
async def list_partners(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = None,
) -> PartnerList:
    after = decode_cursor(cursor, types=[uuid.UUID])[0] if cursor else None
    rows = await store.list_partners(session, after=after, limit=limit + 1)
    items = [PartnerOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return PartnerList(
        items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None
    )


async def _partner_or_404(session: SessionDep, partner_id: uuid.UUID) -> Any:
    partner = await store.get_partner(session, partner_id)
    if partner is None:
        raise not_found("partner")
    return partner


@router.get("/partners/{partner_id}", response_model=PartnerOut, responses=problems(401, 404, 422))
async def get_partner(partner_id: uuid.UUID, session: SessionDep) -> PartnerOut:
    return PartnerOut.model_validate(
        await _partner_or_404(session, partner_id), from_attributes=True
    )


# --- keys -----------------------------------------------------------------------------


@router.get(
    "/partners/{partner_id}/keys",
    response_model=ApiKeyList,
    responses=problems(401, 404, 422),
    summary="A partner's keys (prefixes only: a key is never shown again)",
)
async def list_keys(partner_id: uuid.UUID, session: SessionDep) -> ApiKeyList:
    await _partner_or_404(session, partner_id)
    return ApiKeyList(items=[_key_out(row) for row in await store.list_keys(session, partner_id)])


@router.post(
    "/partners/{partner_id}/keys",
    status_code=201,
    response_model=ApiKeyIssued,
    responses=problems(401, 404, 422),
    summary="Issue an additional key; existing keys keep working until revoked",
)
async def issue_key(
    partner_id: uuid.UUID, session: SessionDep, gateway: GatewayDep, response: Response
) -> ApiKeyIssued:
    await _partner_or_404(session, partner_id)
    key, issued = await _new_key(session, partner_id)
    await session.commit()
    gateway.keys.forget(issued.prefix)
    log.info("api key issued", partner_id=str(partner_id), key_id=str(key.id))
    response.headers["Location"] = f"/admin/partners/{partner_id}/keys/{key.id}"
    return _issued(key, issued.token)


async def _key_or_404(session: SessionDep, partner_id: uuid.UUID, key_id: uuid.UUID) -> Any:
    key = await store.get_key_for_update(session, partner_id, key_id)
    if key is None:
        raise not_found("key")
    return key


async def _revoke(
    partner_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, gateway: GatewayDep
) -> ApiKeyOut:
    key = await _key_or_404(session, partner_id, key_id)
    revoked = await store.revoke_key(session, key.id, key.prefix)
    await session.commit()
    # This replica refuses the key from now on; the others hear the NOTIFY.
    gateway.keys.forget(key.prefix)
    log.info("api key revoked", partner_id=str(partner_id), key_id=str(key_id))
    return _key_out(revoked)


@router.post(
    "/partners/{partner_id}/keys/{key_id}/revoke",
    response_model=ApiKeyOut,
    responses=problems(401, 404, 422),
    summary="Revoke a key at once (revoking a revoked key changes nothing)",
)
async def revoke_key(
    partner_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, gateway: GatewayDep
) -> ApiKeyOut:
    return await _revoke(partner_id, key_id, session, gateway)


@router.delete(
    "/partners/{partner_id}/keys/{key_id}",
    response_model=ApiKeyOut,
    responses=problems(401, 404, 422),
    summary="Revoke a key at once (the same as POST .../revoke)",
)
async def delete_key(
    partner_id: uuid.UUID, key_id: uuid.UUID, session: SessionDep, gateway: GatewayDep
) -> ApiKeyOut:
    return await _revoke(partner_id, key_id, session, gateway)


@router.post(
    "/partners/{partner_id}/keys/{key_id}/rotate",
    status_code=201,
    response_model=KeyRotated,
    responses=problems(401, 404, 409, 422),
    summary="Issue a new key; the old one keeps working for overlap_seconds, then expires",
)
async def rotate_key(
    partner_id: uuid.UUID,
    key_id: uuid.UUID,
    session: SessionDep,
    gateway: GatewayDep,
    response: Response,
    body: RotateIn | None = Body(default=None),
) -> KeyRotated:
    old = await _key_or_404(session, partner_id, key_id)
    if old.revoked_at is not None:
        raise conflict("That key is revoked; issue a new key instead.")
    overlap = (
        body.overlap_seconds
        if body is not None and body.overlap_seconds is not None
        else gateway.settings.key_rotation_overlap_seconds
    )
    new, issued = await _new_key(session, partner_id)
    expiring = await store.expire_key(session, old.id, old.prefix, overlap)
    await session.commit()
    gateway.keys.forget(issued.prefix)
    gateway.keys.forget(old.prefix)
    log.info(
        "api key rotated",
        partner_id=str(partner_id),
        old_key_id=str(old.id),
        new_key_id=str(new.id),
        overlap_seconds=overlap,
    )
    response.headers["Location"] = f"/admin/partners/{partner_id}/keys/{new.id}"
    return KeyRotated(new_key=_issued(new, issued.token), old_key=_key_out(expiring))


# --- programmes -----------------------------------------------------------------------


@router.post(
    "/programmes",
    status_code=201,
    response_model=ProgrammeOut,
    responses=problems(401, 409, 422),
    summary="Define a programme (immutable once defined)",
)
async def define_programme(
    body: domain.ProgrammeDefinition,
    session: SessionDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    errors: list[FieldError] = domain.programme_problems(body)
    kinds = await store.partner_kinds(session, [p.partner_id for p in body.providers])
    errors += domain.provider_problems(body, kinds)
    if errors:
        raise unprocessable(*errors, detail="The programme definition is not valid.")
    definition = body.model_dump(mode="json")
    stored = await store.insert_programme(session, body.code, definition)
    if stored is None:
        raise conflict(f"A programme with code '{body.code}' is already defined.")
    await request.app.state.runtime.outbox.add(
        session,
        ProgrammeDefined(
            code=body.code,
            name=body.name,
            eligible_benefits=list(body.eligible_benefits),
            min_age=body.min_age,
            max_age=body.max_age,
            support_weeks=body.support_weeks,
            min_job_hours=body.min_job_hours,
            sustainment_weeks=body.sustainment_weeks,
            providers=[
                ProviderArea(partner_id=p.partner_id, local_authorities=p.local_authorities)
                for p in body.providers
            ],
            tariff=body.tariff.model_dump(),
            targets=body.targets.model_dump(),
        ),
        aggregate_id=f"programme:{body.code}",
    )
    await session.commit()
    log.info("programme defined", code=body.code, providers=len(body.providers))
    response.headers["Location"] = f"/admin/programmes/{body.code}"
    return {**stored.definition, "created_at": stored.created_at}


@router.get("/programmes", response_model=ProgrammeList, responses=_ADMIN_ERRORS)
async def list_programmes(session: SessionDep) -> dict[str, Any]:
    rows = await store.list_programmes(session)
    return {"items": [{**row.definition, "created_at": row.created_at} for row in rows]}


@router.get("/programmes/{code}", response_model=ProgrammeOut, responses=problems(401, 404))
async def get_programme(code: str, session: SessionDep) -> dict[str, Any]:
    row = await store.get_programme(session, code)
    if row is None:
        raise not_found("programme")
    return {**row.definition, "created_at": row.created_at}
