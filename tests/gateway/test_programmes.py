"""Programme definitions (contract §1): validated, stored once, immutable, and published
as ``gateway.programme.defined`` in the same transaction."""

from __future__ import annotations

import asyncio
import copy
import secrets
from typing import Any

import pytest
import pytest_asyncio

from tests.gateway.harness import GatewayUnderTest
from tests.support.builders import programme_body
from tests.support.events import outbox_events
from tests.support.gateway import Partner

EVENT = "gateway.programme.defined"


@pytest_asyncio.fixture(scope="module")
async def providers(gateway: GatewayUnderTest) -> list[Partner]:
    return [await gateway.partner("provider"), await gateway.partner("provider")]


def _code() -> str:
    return f"prog-{secrets.token_hex(4)}"


def _body(providers: list[Partner], **overrides: Any) -> dict[str, Any]:
    return programme_body(
        _code(),
        [
            {"partner_id": providers[0].id, "local_authorities": ["Wigan", "Bolton"]},
            {"partner_id": providers[1].id, "local_authorities": ["Salford"]},
        ],
        **overrides,
    )


async def _events_for(gateway: GatewayUnderTest, code: str) -> list[dict]:
    return [
        e.payload for e in await outbox_events(gateway.runtime, EVENT) if e.payload["code"] == code
    ]


async def test_a_valid_programme_is_stored_and_published_once(
    gateway: GatewayUnderTest, providers: list[Partner]
) -> None:
    body = _body(providers)
    body["providers"][1]["local_authorities"] = ["  Salford "]
    response = await gateway.admin.admin.post("/admin/programmes", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored.pop("created_at")
    expected = copy.deepcopy(body)
    expected["providers"][1]["local_authorities"] = ["Salford"]
    assert stored == expected
    assert response.headers["location"] == f"/admin/programmes/{body['code']}"

    fetched = await gateway.admin.admin.get(f"/admin/programmes/{body['code']}")
    assert fetched.status_code == 200 and fetched.json()["tariff"] == body["tariff"]

    [event] = await _events_for(gateway, body["code"])
    assert event["providers"] == expected["providers"]
    assert event["tariff"] == body["tariff"] and event["targets"] == body["targets"]
    assert (event["min_age"], event["max_age"], event["sustainment_weeks"]) == (18, 66, 50)
    assert event["eligible_benefits"] == ["ESA", "JSA", "UC"]


async def test_a_code_is_defined_once_and_never_changed(
    gateway: GatewayUnderTest, providers: list[Partner]
) -> None:
    body = _body(providers)
    assert (await gateway.admin.admin.post("/admin/programmes", json=body)).status_code == 201
    for again in (body, {**body, "name": "Something else", "min_age": 25}):
        response = await gateway.admin.admin.post("/admin/programmes", json=again)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
    stored = (await gateway.admin.admin.get(f"/admin/programmes/{body['code']}")).json()
    assert stored["name"] == body["name"] and stored["min_age"] == 18
    assert len(await _events_for(gateway, body["code"])) == 1


async def test_two_definitions_racing_for_one_code_give_one_201_and_one_409(
    gateway: GatewayUnderTest, providers: list[Partner]
) -> None:
    body = _body(providers)
    responses = await asyncio.gather(
        *(gateway.admin.admin.post("/admin/programmes", json=body) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert len(await _events_for(gateway, body["code"])) == 1


def _set(path: str, value: Any):
    def apply(body: dict) -> None:
        target = body
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if value is _DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


_DELETE = object()
UNKNOWN_PARTNER = "00000000-0000-4000-8000-000000000001"

INVALID = [
    (
        "LA twice for one provider",
        _set("providers.0.local_authorities", ["Wigan", "Wigan"]),
        "providers[0].local_authorities[1]",
    ),
    (
        "LA twice across providers",
        _set("providers.1.local_authorities", [" wigan "]),
        "providers[1].local_authorities[0]",
    ),
    ("unknown partner", _set("providers.0.partner_id", UNKNOWN_PARTNER), "providers[0].partner_id"),
    ("malformed partner id", _set("providers.0.partner_id", "p-1"), "providers[0].partner_id"),
    ("no providers", _set("providers", []), "providers"),
    ("no areas", _set("providers.0.local_authorities", []), "providers[0].local_authorities"),
    (
        "blank area",
        _set("providers.0.local_authorities", [" "]),
        "providers[0].local_authorities[0]",
    ),
    ("tariff amount missing", _set("tariff.education_start", _DELETE), "tariff.education_start"),
    ("unknown tariff kind", _set("tariff.bonus", 100), "tariff.bonus"),
    ("negative amount", _set("tariff.job_start", -1), "tariff.job_start"),
    ("fractional pence", _set("tariff.attachment", 300.5), "tariff.attachment"),
    ("amount as text", _set("tariff.attachment", "30000"), "tariff.attachment"),
    ("amount as boolean", _set("tariff.attachment", True), "tariff.attachment"),
    ("absurd amount", _set("tariff.attachment", 10**12), "tariff.attachment"),
    ("min above max age", _set("min_age", 70), "min_age"),
    ("age as text", _set("min_age", "18"), "min_age"),
    ("unclaimable sustainment", _set("sustainment_weeks", 52), "sustainment_weeks"),
    ("zero support weeks", _set("support_weeks", 0), "support_weeks"),
    ("negative job hours", _set("min_job_hours", -1), "min_job_hours"),
    ("unknown benefit", _set("eligible_benefits", ["ESA", "XYZ"]), "eligible_benefits[1]"),
    ("benefit twice", _set("eligible_benefits", ["ESA", "ESA"]), "eligible_benefits[1]"),
    ("no benefits", _set("eligible_benefits", []), "eligible_benefits"),
    ("rate above one", _set("targets.job_start_rate", 1.5), "targets.job_start_rate"),
    ("target missing", _set("targets.sustainment_rate", _DELETE), "targets.sustainment_rate"),
    ("name missing", _set("name", _DELETE), "name"),
    ("blank name", _set("name", "  "), "name"),
    ("code with spaces", _set("code", "working well"), "code"),
    ("empty code", _set("code", ""), "code"),
    ("code too long", _set("code", "c" * 65), "code"),
    ("unknown field", _set("surprise", 1), "surprise"),
]


@pytest.mark.parametrize("label, change, field", INVALID, ids=[c[0] for c in INVALID])
async def test_a_malformed_definition_is_422_naming_the_field_and_stores_nothing(
    gateway: GatewayUnderTest, providers: list[Partner], label: str, change, field: str
) -> None:
    body = _body(providers)
    code = body["code"]
    change(body)
    response = await gateway.admin.admin.post("/admin/programmes", json=body)
    assert response.status_code == 422, (label, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in response.json()["errors"]]
    assert field in fields, (label, fields)
    lookup = body.get("code") if isinstance(body.get("code"), str) and body["code"] else code
    assert (await gateway.admin.admin.get(f"/admin/programmes/{lookup}")).status_code in (
        404,
        405,
    )
    assert await _events_for(gateway, code) == []


async def test_a_provider_that_is_not_a_provider_is_refused(
    gateway: GatewayUnderTest, providers: list[Partner]
) -> None:
    referrer = await gateway.partner("jcp")
    body = _body(providers)
    body["providers"][1]["partner_id"] = referrer.id
    response = await gateway.admin.admin.post("/admin/programmes", json=body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "providers[1].partner_id" and "jcp" in error["message"]
    body["providers"][1]["partner_id"] = providers[0].id  # the same provider twice
    response = await gateway.admin.admin.post("/admin/programmes", json=body)
    assert response.status_code == 422
    assert "providers[1].partner_id" in [e["field"] for e in response.json()["errors"]]


async def test_bodies_that_are_not_a_definition_at_all_are_422(gateway: GatewayUnderTest) -> None:
    for content in (b"", b"{not json", b"[]", b'"working-well"', b"null"):
        response = await gateway.admin.admin.post(
            "/admin/programmes", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_programmes_are_listed(gateway: GatewayUnderTest, providers: list[Partner]) -> None:
    body = _body(providers)
    await gateway.admin.admin.post("/admin/programmes", json=body)
    listed = await gateway.admin.admin.get("/admin/programmes")
    assert body["code"] in [p["code"] for p in listed.json()["items"]]
    assert (await gateway.admin.admin.get("/admin/programmes/no-such-code")).status_code == 404
