"""RFC 9457 problem details, the one error shape of the partner contract (§7).

Raise :class:`Problem` (or one of its helpers) anywhere below a route; the handlers
installed by :func:`install_problem_handlers` turn it, FastAPI's validation errors and
anything unexpected into ``application/problem+json``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shared.db import is_database_unavailable
from shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ProblemOut(BaseModel):
    """application/problem+json (contract §7), as the OpenAPI documents describe it."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorOut] | None = None


def problem(description: str) -> dict[str, Any]:
    """An error response for a route's ``responses=``: a problem body, documented."""
    return {
        "model": ProblemOut,
        "description": description,
        "content": {PROBLEM_JSON: {}},
    }


# What FastAPI raises (HTTPException 400) when a JSON body cannot even be decoded.
BODY_PARSE_ERROR = "There was an error parsing the body"
log = get_logger(__name__)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass
class Problem(Exception):
    status: int
    detail: str = ""
    title: str | None = None
    errors: Sequence[FieldError] = field(default_factory=list)
    type: str = "about:blank"
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors or self.status == 422:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


def problem_response(problem: Problem) -> Response:
    return Response(
        content=orjson.dumps(problem.body()),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def not_found(what: str = "resource") -> Problem:
    # The same answer whether the thing does not exist or belongs to someone else (§1).
    return Problem(404, f"No such {what}.")


# A path id, documented as the UUID it is. It is taken as a string so that one which is
# not a UUID gets parse_id's 404 (§1), not FastAPI's 422.
PathId = Annotated[
    str,
    Path(
        json_schema_extra={"format": "uuid"},
        description="The id the resource was created with; any other value is 404.",
    ),
]


def parse_id(raw: str, what: str) -> uuid.UUID:
    """A path id; one that is not even a UUID names nothing the caller may see: 404 (§1)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found(what) from None


def conflict(detail: str) -> Problem:
    return Problem(409, detail)


def forbidden(detail: str = "Your partner kind may not take this action.") -> Problem:
    return Problem(403, detail)


def unprocessable(*errors: FieldError, detail: str = "The request has invalid fields.") -> Problem:
    return Problem(422, detail, errors=list(errors))


def field_name(loc: Sequence[int | str]) -> str:
    """`("body", "person", "nino")` -> `"person.nino"`; list positions as `[i]`."""
    parts: list[str] = []
    for item in loc:
        if item in ("body", "query", "path", "header") and not parts:
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "body"


def validation_problem(exc: RequestValidationError) -> Problem:
    errors = []
    for error in exc.errors():
        loc = error.get("loc", ())
        if error.get("type") == "json_invalid":
            # Pydantic locates a JSON syntax error by character offset, not by field.
            errors.append(FieldError("body", "is not valid JSON"))
            continue
        # Pydantic names the failing union/validator arm last (e.g. "function-after");
        # partners want the field they sent.
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        message = str(error.get("msg", "is invalid"))
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        errors.append(FieldError(field_name(loc), message))
    return unprocessable(*errors)


# PostgreSQL's "character not in repertoire" (a NUL in text), wherever SQLAlchemy and
# asyncpg put it in the exception chain.
_UNSTORABLE_TEXT = "22021"


def _is_unstorable_text(exc: BaseException) -> bool:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if getattr(current, "sqlstate", None) == _UNSTORABLE_TEXT:
            return True
        stack += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return False


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # FastAPI's 400 for a body json cannot decode at all (invalid UTF-8): for the
            # partner it is malformed input like any other, so 422 naming the body (§7).
            return problem_response(unprocessable(FieldError("body", "is not valid UTF-8 JSON")))
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return problem_response(Problem(exc.status_code, detail, headers=headers))

    async def _database(_: Request, exc: Exception) -> Response:
        # Answered here rather than by the catch-all below: Starlette re-raises whatever
        # reaches the catch-all and uvicorn then drops the connection, so through the
        # gateway a 503 would arrive as a broken call (502).
        if _is_unstorable_text(exc):
            # A NUL in a query parameter (or a field a model let through) reached
            # PostgreSQL, which cannot hold it: the partner's input is wrong, not us.
            log.warning("unstorable text in a request", error=type(exc).__name__)
            return problem_response(
                unprocessable(
                    FieldError("request", "must not contain NUL characters"),
                    detail="A value in the request contains a character that cannot be stored.",
                )
            )
        if is_database_unavailable(exc):
            return _database_unavailable(exc)
        raise exc  # a real error: the catch-all's 500

    for error in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(error, _database)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        if is_database_unavailable(exc):
            return _database_unavailable(exc)
        log.exception("unhandled error", error=type(exc).__name__, **_cause_of(exc))
        return problem_response(Problem(500, "An unexpected error occurred."))


def _cause_of(exc: BaseException) -> dict[str, object]:
    """What lies under a wrapped error (a driver's exception class and SQLSTATE): enough
    to diagnose, never the message, which may quote personal data."""
    causes: list[str] = []
    sqlstate = None
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(causes) < 6:
        causes.append(type(cause).__name__)
        sqlstate = sqlstate or getattr(cause, "sqlstate", None)
        cause = cause.__cause__ or cause.__context__
    found: dict[str, object] = {}
    if causes:
        found["causes"] = causes
    if isinstance(sqlstate, str):
        found["sqlstate"] = sqlstate
    return found


def describe_failure(exc: BaseException) -> str:
    """A failure as it may be written down where operators read it (a dead letter's
    headers): a database error by class and SQLSTATE only (its message can quote the
    row: "Key (nino)=(...) already exists"), a validation error by field and rule
    without the input, anything else as raised."""
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        rules = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        return f"{name}: {rules}"[:1000]
    cause = _cause_of(exc)
    sqlstate = getattr(exc, "sqlstate", None) or cause.get("sqlstate")
    if isinstance(exc, DBAPIError) or sqlstate:
        chain = " < ".join(cause.get("causes", []))  # type: ignore[arg-type]
        return f"{name} (sqlstate {sqlstate or 'unknown'}) {chain}".strip()
    return f"{name}: {exc}"[:1000]


def _database_unavailable(exc: BaseException) -> Response:
    log.warning("database unavailable", error=type(exc).__name__)
    return problem_response(
        Problem(
            503,
            "The service's database is unavailable; retry shortly.",
            headers={"Retry-After": "2"},
        )
    )
