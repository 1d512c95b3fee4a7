"""The casework API's published shape: its OpenAPI document, and the vocabularies the
contract fixes (session kinds, attendance, barrier keys) kept in one place."""

from __future__ import annotations

import typing

import asyncpg
import pytest

from services.casework.api import models
from services.casework.api.sessions import _retryable
from services.casework.domain import BARRIER_KEYS, Attendance, SessionKind
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
