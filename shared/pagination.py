"""Keyset pagination with opaque cursors, for partner-facing lists.

A cursor is the sort key of the last item returned, base64-encoded. Lists stay stable
while new rows arrive (no offsets), and each page is one index range scan.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson

from shared.errors import FieldError, unprocessable


def encode_cursor(*key: Any) -> str:
    raw = orjson.dumps([_plain(part) for part in key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, types: Sequence[type]) -> tuple[Any, ...]:
    """Parse a cursor made by :func:`encode_cursor`; ``422`` naming ``cursor`` if it isn't one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError("wrong shape")
        return tuple(_typed(value, kind) for value, kind in zip(parts, types, strict=True))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise unprocessable(FieldError("cursor", "is not a cursor this list returned")) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not an int")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value
    raise TypeError(f"unsupported cursor part {kind}")
