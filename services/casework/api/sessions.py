"""Bulk session sync from provider CRMs, and reading a participant's sessions.

Every item is judged on its own, so one bad item is an ``error`` result rather than a
``422`` for the whole batch. A clean batch, the usual case, is validated straight from
the request bytes in one pass (pydantic's JSON parser, no intermediate objects); only
when that fails is the body parsed and each item validated alone to single out the
bad ones. Both paths use the same model, whose field types behave the same on JSON
text and on parsed JSON, so they always agree.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import defaultdict
from typing import Any

import asyncpg
import orjson
import pydantic_core
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError

from services.casework.api.deps import ProviderDep, ReaderDep, now, visible_participant
from services.casework.api.models import (
    IsoTimestamp,
    SessionIn,
    SessionList,
    SessionOut,
    SessionsIn,
    SyncResults,
)
from services.casework.domain import (
    MAX_SESSIONS_PER_SYNC,
    IncomingSession,
    InvalidItem,
    SessionRecord,
    plan_session_sync,
)
from services.casework.store import sessions as session_store
from shared.db import SessionDep
from shared.errors import FieldError, PathId, Problem, problem, unprocessable
from shared.logging import get_logger

router = APIRouter(tags=["casework"])
log = get_logger(__name__)

# The largest sync the contract allows stays below this: 1,000 items whose 10,000
# characters of notes are all outside the BMP, each sent as a twelve-byte surrogate
# pair of \uXXXX escapes (json.dumps's default), come to about 123 MB. Anything bigger
# is not a sync. The gateway's cap is the same.
MAX_BODY_BYTES = 128 * 1024 * 1024
# Two syncs creating the same new sessions at the same moment: one retries.
SYNC_ATTEMPTS = 5
RETRYABLE_SQLSTATES = frozenset(
    {
        "23505",  # unique violation: a key this batch creates was created meanwhile
        "40P01",  # deadlock
        "40001",  # serialization failure
    }
)

_BATCH = TypeAdapter(SessionsIn)
_ITEMS = TypeAdapter(list[SessionIn])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema with its ``$defs`` substituted, to embed in the OpenAPI document."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Problem(413, f"The body exceeds {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parsed(raw: bytes) -> Any:
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        pass
    # JSON's grammar allows a lone surrogate escape (a CRM cutting notes by UTF-16
    # length splits an emoji) but pydantic's parser refuses it: the standard library
    # takes it, so the item holding it fails alone, as every bad item does.
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except ValueError:
        raise unprocessable(FieldError("body", "is not valid JSON")) from None


def _sessions_list(raw: bytes) -> list[Any]:
    document = _parsed(raw)
    if not isinstance(document, dict):
        raise unprocessable(FieldError("body", 'must be an object: {"sessions": [...]}'))
    if "sessions" not in document:
        raise unprocessable(FieldError("sessions", "is required"))
    items = document["sessions"]
    if not isinstance(items, list):
        raise unprocessable(FieldError("sessions", "must be a list"))
    if len(items) > MAX_SESSIONS_PER_SYNC:
        raise Problem(
            413,
            f"A sync carries at most {MAX_SESSIONS_PER_SYNC} sessions; "
            f"this one has {len(items)}. Split it into batches.",
        )
    return items


def _external_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("external_id")
        if isinstance(value, str) and _encodable(value):
            return value[:200]
    return None


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the answer could not carry it
        return False
    return True


TIMESTAMP_FIELDS = frozenset({"occurred_at", "modified_at"})


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error["loc"]) or "item"
        message = str(error["msg"]).removeprefix("Value error, ")
        # Patterns are checks of ours: say what they mean, not the regular expression.
        if field in TIMESTAMP_FIELDS and error["type"] in (
            "string_type",
            "string_pattern_mismatch",
        ):
            message = IsoTimestamp.MESSAGE
        elif error["type"] == "string_pattern_mismatch":
            message = "must not contain NUL characters"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _record(item: SessionIn) -> SessionRecord:
    return SessionRecord(
        item.external_id,
        item.participant_id,
        item.occurred_at,
        item.kind,
        item.duration_minutes,
        item.attendance,
        item.notes,
        item.modified_at,
    )


def parse_batch(raw: bytes) -> list[IncomingSession]:
    """The batch's items, each a ``SessionRecord`` or an ``InvalidItem`` with its reasons.

    ``422`` if the body is not ``{"sessions": [...]}``, ``413`` past 1,000 items.
    """
    try:
        return [_record(item) for item in _BATCH.validate_json(raw).sessions]
    except ValidationError:
        pass  # something is wrong somewhere: find out what, item by item
    return validate_items(_sessions_list(raw))


def validate_items(raw_items: list[Any]) -> list[IncomingSession]:
    """Each parsed item validated alone."""
    try:
        return [_record(item) for item in _ITEMS.validate_python(raw_items)]
    except ValidationError as exc:
        failures: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for error in exc.errors(include_url=False, include_input=False):
            index, *loc = error["loc"]
            failures[int(index)].append({**error, "loc": tuple(loc)})
    good = [i for i in range(len(raw_items)) if i not in failures]
    validated = iter(_ITEMS.validate_python([raw_items[i] for i in good]))
    results: list[IncomingSession] = []
    for index, raw in enumerate(raw_items):
        if index in failures:
            if not isinstance(raw, dict):
                results.append(InvalidItem(None, "item: must be an object"))
            else:
                results.append(InvalidItem(_external_id(raw), _describe(failures[index])))
        else:
            results.append(_record(next(validated)))
    return results


def _retryable(exc: Exception) -> bool:
    """Did this batch lose a race with another sync (so running it again will do)?"""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(error, "sqlstate", None) in RETRYABLE_SQLSTATES


@router.post(
    "/v1/sessions/bulk",
    response_model=SyncResults,
    summary="Sync up to 1,000 key-worker sessions from a CRM",
    description=(
        "Upsert on (provider, `external_id`); the latest `modified_at` wins. One result "
        "per item, in order: `created`, `updated`, `unchanged` (same content and "
        "`modified_at`), `stale` (older than what is stored: ignored) or `error` (with "
        "a message naming the field; the other items still apply). Items repeating an "
        "`external_id` apply in order. Attended or missed sessions cannot be in the "
        "future; a session cannot predate the referral or follow the participant's exit."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(SessionsIn.model_json_schema())}},
        }
    },
    responses={
        403: problem("Only providers sync sessions."),
        413: problem("More than 1,000 sessions in one call."),
        422: problem('The body is not {"sessions": [...]}.'),
    },
)
async def sync_sessions(caller: ProviderDep, session: SessionDep, request: Request) -> Response:
    items = parse_batch(await _read_body(request))
    moment = now()
    valid = [item for item in items if not isinstance(item, InvalidItem)]
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            scopes = await session_store.participant_scopes(
                session, {item.participant_id for item in valid}
            )
            stored = await session_store.stored_sessions(
                session, caller.partner_id, (item.external_id for item in valid)
            )
            plan = plan_session_sync(items, stored, scopes, caller.partner_id, moment)
            await session_store.write_sessions(
                session, caller.partner_id, plan.writes, plan.created
            )
            await session.commit()
            break
        except session_store.CONNECTION_ERRORS as exc:
            # The connection died under the driver, behind SQLAlchemy's back: discard it
            # rather than let the session try to roll back over it, and answer as the
            # shared handler answers for a database that is out of reach.
            with contextlib.suppress(Exception):
                await session.invalidate()
            log.warning("database unavailable", error=type(exc).__name__)
            raise Problem(
                503,
                "The service's database is unavailable; retry shortly.",
                headers={"Retry-After": "2"},
            ) from None
        except (DBAPIError, asyncpg.PostgresError) as exc:
            if not _retryable(exc):
                raise
            await session.rollback()
            log.info("session sync raced another; retrying", attempt=attempt)
    else:
        raise Problem(
            503, "Other syncs kept changing these sessions; retry.", headers={"Retry-After": "1"}
        )
    counts: dict[str, int] = defaultdict(int)
    for result in plan.results:
        counts[result.status] += 1
    log.info("sessions synced", provider_id=str(caller.partner_id), **counts)
    body = {
        "results": [
            {"external_id": r.external_id, "status": r.status, "error": r.error}
            for r in plan.results
        ]
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/v1/participants/{participant_id}/sessions",
    response_model=SessionList,
    summary="A participant's sessions as stored, oldest first",
    responses={
        403: problem("Referrers do not see casework."),
        404: problem("No such participant."),
    },
)
async def list_sessions(
    participant_id: PathId, caller: ReaderDep, session: SessionDep
) -> SessionList:
    participant = await visible_participant(session, caller, participant_id)
    rows = await session_store.sessions_of(session, participant.id)
    return SessionList(
        items=[
            SessionOut(
                external_id=r.external_id,
                participant_id=r.participant_id,
                occurred_at=r.occurred_at,
                kind=r.kind,
                duration_minutes=r.duration_minutes,
                attendance=r.attendance,
                modified_at=r.modified_at,
                notes=r.notes,
            )
            for r in rows
        ]
    )
