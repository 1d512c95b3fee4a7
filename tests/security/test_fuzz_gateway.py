"""The gateway's published OpenAPI document, fuzzed against the running platform
(schemathesis, bounded examples per operation): whatever a partner or the admin sends,
never a 5xx, and every answer conforms to the document (status code documented,
content type, body schema, headers). Callers are real partners of the kinds each
operation serves; half the time path ids are real ones the caller owns, so bodies are
fuzzed against live records, not only against 404s."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.app import create_app
from tests.security.world import Tenant, build_tenant
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform

# The document the gateway serves (checked against the running one below), read at
# collection so each operation is its own test.
DOCUMENT = create_app().openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
KINDS = ("jcp", "probation", "treatment", "provider", "programme_office")
_ALLOWED = re.compile(r"Partner kinds allowed: ([a-z_, ]+)\.")


def allowed_kinds(operation: Any) -> list[str]:
    """The kinds the document says may call it (a 403 is tested elsewhere)."""
    description = operation.definition.raw.get("description", "")
    found = _ALLOWED.search(description)
    return [k.strip() for k in found.group(1).split(",")] if found else list(KINDS)


class Callers:
    """A real partner of every kind, and the ids a provider and a referrer own."""

    def __init__(self, tenant: Tenant, others: dict[str, Partner], admin_token: str) -> None:
        self.tenant = tenant
        self.partners = {"jcp": tenant.referrer, "provider": tenant.provider, **others}
        self.admin_token = admin_token

    def headers(self, kind: str | None) -> dict[str, str]:
        key = self.admin_token if kind is None else self.partners[kind].api_key
        return {"Authorization": f"Bearer {key}"}

    def owned_ids(self, kind: str) -> dict[str, str]:
        t = self.tenant
        ids = {
            "referral_id": t.referral["id"],
            "participant_id": t.participant["id"],
            "claim_id": t.claim["id"],
            "episode_id": t.episode["id"],
            "assessment_id": t.assessment["id"],
        }
        partner = self.partners[kind]
        if partner.id in t.webhooks:
            ids["webhook_id"] = t.webhooks[partner.id]["id"]
        return ids


@pytest_asyncio.fixture(scope="module")
async def callers(secure_platform: RunningPlatform, secure_gateway: Gateway) -> Callers:
    referrer = await secure_gateway.create_partner("jcp")
    provider = await secure_gateway.create_partner("provider")
    programme = await secure_gateway.define_programme({provider: ["Wigan"]})
    tenant = await build_tenant(referrer, provider, programme["code"], "Wigan")
    others = {k: await secure_gateway.create_partner(k) for k in ("probation", "treatment")}
    others["programme_office"] = await secure_gateway.create_partner("programme_office")
    return Callers(tenant, others, secure_platform.admin_token)


@pytest_asyncio.fixture(scope="module")
async def client(secure_platform: RunningPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secure_platform.gateway_url, timeout=60) as http:
        yield http


async def test_the_gateway_serves_the_document_fuzzed_here(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served["paths"].keys() == DOCUMENT["paths"].keys()


def _strategy(operation: Any) -> st.SearchStrategy:
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


@pytest.mark.parametrize(
    "operation", OPERATIONS, ids=[f"{op.method.upper()} {op.path}" for op in OPERATIONS]
)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    # CI replays one fixed exploration, so a landing is never decided by luck; runs on a
    # developer's machine explore afresh each time.
    derandomize=bool(os.environ.get("CI")),
)
@given(data=st.data())
async def test_no_input_makes_a_server_error_or_breaks_the_document(
    callers: Callers, client: httpx.AsyncClient, operation: Any, data: st.DataObject
) -> None:
    case = data.draw(_strategy(operation), label="request")
    admin = operation.path.startswith("/admin")
    kind = None if admin else data.draw(st.sampled_from(allowed_kinds(operation)), label="kind")
    if kind is not None and case.path_parameters and data.draw(st.booleans(), label="real ids"):
        owned = callers.owned_ids(kind)
        for name in case.path_parameters:
            if name in owned:
                case.path_parameters[name] = owned[name]
    request: dict[str, Any] = case.as_transport_kwargs(base_url="")
    headers = {k: v for k, v in request.get("headers", {}).items() if k.lower() == "content-type"}
    headers.update(callers.headers(kind))
    kwargs: dict[str, Any] = {"params": request.get("params") or None, "headers": headers}
    if "json" in request:
        kwargs["json"] = request["json"]
    elif request.get("data") is not None:
        kwargs["content"] = request["data"]
    response = await client.request(case.method, request["url"], **kwargs)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
