"""The gateway's /openapi.json documents every contract endpoint, with models, so a
partner can generate a client from it; /docs renders it."""

from __future__ import annotations

import re

import httpx

from services.gateway.openapi import merge_openapi
from tests.gateway.harness import GatewayUnderTest

# Every endpoint of the published contract (shared/contract/partner-api.md).
CONTRACT = [
    ("post", "/admin/partners"),
    ("post", "/admin/programmes"),
    ("post", "/v1/referrals"),
    ("get", "/v1/referrals"),
    ("get", "/v1/referrals/{}"),
    ("post", "/v1/referrals/{}/withdraw"),
    ("post", "/v1/referrals/{}/decline"),
    ("post", "/v1/participants"),
    ("get", "/v1/participants"),
    ("get", "/v1/participants/{}"),
    ("post", "/v1/sessions/bulk"),
    ("get", "/v1/participants/{}/sessions"),
    ("post", "/v1/participants/{}/assessments"),
    ("post", "/v1/participants/{}/employment"),
    ("post", "/v1/participants/{}/employment/{}/end"),
    ("post", "/v1/participants/{}/exit"),
    ("post", "/v1/outcome-claims"),
    ("get", "/v1/outcome-claims"),
    ("get", "/v1/outcome-claims/{}"),
    ("post", "/v1/outcome-claims/{}/decision"),
    ("get", "/v1/payments/statement"),
    ("get", "/v1/reports/performance"),
    ("get", "/v1/reports/cohorts"),
    ("get", "/v1/reports/barriers"),
    ("post", "/v1/webhooks"),
    ("get", "/v1/webhooks"),
    ("delete", "/v1/webhooks/{}"),
    ("get", "/v1/webhooks/{}/deliveries"),
    # Added by the authorization matrix and the gateway's issue.
    ("get", "/v1/outcome-claims/audit-sample"),
    ("get", "/v1/audit"),
]


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def _document(gateway: GatewayUnderTest) -> dict:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_every_contract_endpoint_is_documented(gateway: GatewayUnderTest) -> None:
    document = await _document(gateway)
    documented = {
        (method, _shape(path))
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    missing = [f"{m.upper()} {p}" for m, p in CONTRACT if (m, p) not in documented]
    assert missing == [], f"not in the gateway's OpenAPI: {missing}"


async def test_each_partner_operation_carries_security_models_and_errors(
    gateway: GatewayUnderTest,
) -> None:
    document = await _document(gateway)
    schemes = document["components"]["securitySchemes"]
    assert schemes["partnerKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["partnerKey"]["description"],
    }
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        assert path.startswith(("/v1/", "/admin/")), f"{path} is not a partner endpoint"
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            expected = [{"adminToken": []}] if path.startswith("/admin") else [{"partnerKey": []}]
            assert operation["security"] == expected, (method, path)
            responses = operation["responses"]
            if path.startswith("/v1/"):
                for status in ("401", "429", "503"):
                    assert status in responses, (method, path, status)
                    assert "application/problem+json" in responses[status]["content"]
            success = [s for s in responses if s.startswith("2")]
            assert success, (method, path)
    # Request and response models are there to generate clients from.
    referrals = document["paths"].get("/v1/referrals", {})
    if "post" in referrals:
        body = referrals["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in body or "properties" in body
    for ref in re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', str(document)):
        assert ref in document["components"]["schemas"], ref


async def test_operations_say_which_partner_kinds_may_call_them(
    gateway: GatewayUnderTest,
) -> None:
    document = await _document(gateway)
    audit = document["paths"]["/v1/audit"]["get"]
    assert "Partner kinds allowed: programme_office." in audit["description"]
    assert "403" in audit["responses"]


async def test_every_path_id_is_documented_as_a_uuid(gateway: GatewayUnderTest) -> None:
    """A generated client should type ids as UUIDs, as every id the platform issues is
    (a programme's code is a code, not an id)."""
    document = await _document(gateway)
    path_ids = {
        (path, parameter["name"]): parameter["schema"]
        for path, item in document["paths"].items()
        for operation in item.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"].endswith("_id")
    }
    assert ("/v1/referrals/{referral_id}", "referral_id") in path_ids
    assert ("/v1/participants/{participant_id}/employment/{episode_id}/end", "episode_id") in (
        path_ids
    )
    not_uuids = {key: schema for key, schema in path_ids.items() if schema.get("format") != "uuid"}
    assert not_uuids == {}


async def test_the_docs_page_renders_the_document(gateway: GatewayUnderTest) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower() and "/openapi.json" in response.text


def test_schemas_two_services_name_alike_are_kept_apart() -> None:
    gateway_doc = {
        "openapi": "3.1.0",
        "paths": {},
        "components": {"schemas": {"Page": {"type": "object", "title": "Gateway page"}}},
    }
    service_doc = {
        "paths": {
            "/v1/referrals": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Page"}
                                }
                            }
                        }
                    }
                }
            },
            "/internal/rebuild": {"post": {"responses": {"200": {}}}},
            "/v1/reports/performance": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": {"Page": {"type": "object", "title": "Referral page"}}},
    }
    merged = merge_openapi(gateway_doc, {"referrals": service_doc})
    schemas = merged["components"]["schemas"]
    assert schemas["Page"]["title"] == "Gateway page"
    assert schemas["ReferralsPage"]["title"] == "Referral page"
    ref = merged["paths"]["/v1/referrals"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    assert ref == "#/components/schemas/ReferralsPage"
    # Internal paths, and paths the gateway routes to another service, stay out.
    assert set(merged["paths"]) == {"/v1/referrals"}
