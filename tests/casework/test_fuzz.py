"""Fuzzing the casework API from its own OpenAPI document (schemathesis): whatever a
partner sends, the answer is never a server error, and every error is problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.casework.support import Casework, openapi

SCHEMA = schemathesis.openapi.from_dict(openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
PROVIDER = uuid.uuid4()
OFFICE = uuid.uuid4()


def _strategy(operation) -> st.SearchStrategy:
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


@pytest.fixture
async def known_participant(casework: Casework) -> str:
    """A real participant of the fuzzing provider, so fuzzed paths can reach past 404."""
    async with casework.provider(PROVIDER) as client:
        participant = await casework.participant(client, PROVIDER)
    return participant["id"]


@pytest.mark.parametrize(
    "operation", OPERATIONS, ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS]
)
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
async def test_no_input_makes_a_server_error(
    casework: Casework, known_participant: str, operation, data
) -> None:
    case = data.draw(_strategy(operation), label="request")
    if (
        case.path_parameters
        and "participant_id" in case.path_parameters
        and data.draw(st.booleans(), label="real participant")
    ):
        case.path_parameters["participant_id"] = known_participant
    kind = (
        "provider"
        if case.method.upper() == "POST"
        else data.draw(st.sampled_from(["provider", "programme_office"]), label="caller")
    )
    request: dict[str, Any] = case.as_transport_kwargs(base_url="")
    headers = {k: v for k, v in request.get("headers", {}).items() if k.lower() == "content-type"}
    kwargs: dict[str, Any] = {"params": request.get("params") or None, "headers": headers}
    if "json" in request:
        kwargs["json"] = request["json"]
    elif request.get("data") is not None:
        kwargs["content"] = request["data"]
    with casework.consistency_wait(0.05):
        async with casework.app.client(PROVIDER if kind == "provider" else OFFICE, kind) as client:
            response = await client.request(case.method, request["url"], **kwargs)
    assert response.status_code < 500, (case.method, request, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
