"""Fuzzing the outcomes API from its own OpenAPI document (schemathesis): whatever a
partner sends, the answer is never a server error, and every error is problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.outcomes.app import create_app
from tests.outcomes.world import World

pytestmark = pytest.mark.asyncio

SCHEMA = schemathesis.openapi.from_dict(create_app().openapi())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
FUZZ_PARTNERS = {kind: uuid.uuid4() for kind in ("provider", "programme_office")}
# Callers the route serves (kinds it refuses are tested elsewhere): deeper than a 403.
ALLOWED = {
    ("POST", "/v1/outcome-claims"): ["provider"],
    ("POST", "/v1/outcome-claims/{claim_id}/decision"): ["programme_office"],
    ("GET", "/v1/outcome-claims/audit-sample"): ["programme_office"],
}


def _strategy(operation) -> st.SearchStrategy:
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


@pytest.fixture
def brief_consistency_wait(outcomes):
    """Unknown programmes are waited for (§8); fuzzing makes up thousands of them."""
    platform = outcomes.runtime.settings.platform
    saved = platform.consistency_wait_seconds
    platform.consistency_wait_seconds = 0.05
    yield
    platform.consistency_wait_seconds = saved


@pytest.mark.usefixtures("brief_consistency_wait")
@pytest.mark.parametrize(
    "operation", OPERATIONS, ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS]
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
async def test_no_input_makes_a_server_error(world: World, operation, data) -> None:
    case = data.draw(_strategy(operation), label="request")
    allowed = ALLOWED.get((case.method.upper(), operation.path), list(FUZZ_PARTNERS))
    kind = data.draw(st.sampled_from(allowed), label="caller")
    request: dict[str, Any] = case.as_transport_kwargs(base_url="")
    headers = {k: v for k, v in request.get("headers", {}).items() if k.lower() == "content-type"}
    kwargs: dict[str, Any] = {"params": request.get("params") or None, "headers": headers}
    if "json" in request:
        kwargs["json"] = request["json"]
    elif request.get("data") is not None:
        kwargs["content"] = request["data"]
    client = world.client(FUZZ_PARTNERS[kind], kind)
    response = await client.request(case.method, request["url"], **kwargs)
    assert response.status_code < 500, (case.method, request, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
