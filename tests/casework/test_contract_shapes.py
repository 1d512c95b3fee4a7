"""The casework API's published shape: its OpenAPI document, and the vocabularies the
contract fixes (session kinds, attendance, barrier keys) kept in one place."""

from __future__ import annotations

import json
import typing
import uuid

import asyncpg
import pytest

from services.casework.api import models
from services.casework.api.sessions import MAX_BODY_BYTES, _retryable
from services.casework.domain import BARRIER_KEYS, Attendance, SessionKind
from services.gateway.settings import GatewaySettings
from tests.casework.support import openapi

OPENAPI = openapi()

CONTRACT_PATHS = {
    ("post", "/v1/participants"),
    ("get", "/v1/participants"),
    ("get", "/v1/participants/{participant_id}"),
    ("post", "/v1/sessions/bulk"),
    ("get", "/v1/participants/{participant_id}/sessions"),
    ("post", "/v1/participants/{participant_id}/assessments"),
    ("post", "/v1/participants/{participant_id}/employment"),
    ("post", "/v1/participants/{participant_id}/employment/{episode_id}/end"),
    ("post", "/v1/participants/{participant_id}/exit"),
}


def test_every_contract_path_is_documented_with_its_errors() -> None:
    documented = {(method, path) for path, item in OPENAPI["paths"].items() for method in item}
    assert documented >= CONTRACT_PATHS
    for method, path in documented:
        responses = OPENAPI["paths"][path][method]["responses"]
        assert "403" in responses, (method, path)
        if method == "post":
            assert "422" in responses or path == "/v1/sessions/bulk", (method, path)


def test_the_bulk_body_is_documented_although_read_by_hand() -> None:
    body = OPENAPI["paths"]["/v1/sessions/bulk"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["properties"]["sessions"]["maxItems"] == 1000
    item = schema["properties"]["sessions"]["items"]
    assert set(item["required"]) == {
        "external_id",
        "participant_id",
        "occurred_at",
        "kind",
        "attendance",
        "modified_at",
    }
    assert "$ref" not in str(schema)  # self-contained: the gateway merges documents
    assert "413" in OPENAPI["paths"]["/v1/sessions/bulk"]["post"]["responses"]


def test_the_largest_valid_sync_fits_under_both_body_caps() -> None:
    """Every string as long as the model allows, and every character outside the BMP,
    which json.dumps sends as a twelve-byte surrogate pair of escapes: still not 413."""
    schema = models.SessionsIn.model_json_schema()
    properties = schema["$defs"]["SessionIn"]["properties"]

    def longest(name: str) -> str:
        (limit,) = [
            arm["maxLength"]
            for arm in properties[name].get("anyOf", [properties[name]])
            if "maxLength" in arm
        ]
        return "\U0001f600" * limit

    item = {
        "external_id": longest("external_id"),
        "participant_id": str(uuid.uuid4()),
        "occurred_at": "2024-03-01T10:00:00.000000+00:00",
        "kind": "in_work_support",
        "duration_minutes": 1440,
        "attendance": "did_not_attend",
        "modified_at": "2024-03-01T10:00:00.000000+00:00",
        "notes": longest("notes"),
    }
    one = json.dumps(item)
    models.SessionIn.model_validate_json(one)  # a valid item, not merely a long one
    items = schema["properties"]["sessions"]["maxItems"]
    assert items == 1000
    largest = len('{"sessions": []}') + items * (len(one) + len(", "))

    assert largest > 120_000_000  # the worst case really is this big
    assert largest <= MAX_BODY_BYTES
    assert largest <= GatewaySettings().max_bulk_body_bytes


def test_session_vocabularies_match_the_domain() -> None:
    assert set(typing.get_args(models.SessionKindName)) == {k.value for k in SessionKind}
    assert set(typing.get_args(models.AttendanceName)) == {a.value for a in Attendance}
    assert set(typing.get_args(models.SessionKindName)) == {
        "one_to_one",
        "group",
        "phone",
        "video",
        "in_work_support",
    }
    assert set(typing.get_args(models.AttendanceName)) == {
        "attended",
        "did_not_attend",
        "cancelled",
    }


def test_the_barriers_body_has_exactly_the_contracts_keys() -> None:
    assert tuple(models.Barriers.model_fields) == BARRIER_KEYS


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (asyncpg.UniqueViolationError("duplicate key"), True),
        (asyncpg.DeadlockDetectedError("deadlock"), True),
        (asyncpg.SerializationError("could not serialize"), True),
        (asyncpg.CheckViolationError("check"), False),
        (asyncpg.UndefinedTableError("no table"), False),
    ],
)
def test_only_lost_races_are_retried(error: Exception, retry: bool) -> None:
    assert _retryable(error) is retry
