"""Hand-written hostile input through the real gateway: oversized bodies, deeply nested
JSON, wrong content types, invalid UTF-8, huge strings, NUL bytes and lone surrogates
are refused with a 4xx problem naming what was wrong, and leave nothing stored; SQL and
script fragments in free text are stored and handed back verbatim, as JSON text, and
execute nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.security.world import Tenant, build_tenant
from tests.support.builders import referral_body, unique
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform

PROBLEM = "application/problem+json"
INJECTIONS = [
    "Robert'); DROP TABLE referrals.referrals; --",
    "x' OR '1'='1",
    "1; SELECT pg_sleep(30); --",
    '<script>alert("pwned")</script>',
    '<img src=x onerror="alert(1)">',
    "{{7*7}} ${7*7} %s%n",
    "\u202eRTL override and emoji \U0001f600",
]


@dataclass
class Setup:
    gateway: Gateway
    referrer: Partner
    tenant: Tenant
    programme: str


@pytest_asyncio.fixture(scope="module")
async def setup(secure_gateway: Gateway) -> Setup:
    referrer = await secure_gateway.create_partner("jcp")
    provider = await secure_gateway.create_partner("provider")
    programme = (await secure_gateway.define_programme({provider: ["Wigan"]}))["code"]
    # The tenant's referrer is another partner: `referrer` above posts only hostile input,
    # so whatever it has stored afterwards is what hostile input stored.
    colleague = await secure_gateway.create_partner("jcp")
    tenant = await build_tenant(colleague, provider, programme, "Wigan")
    return Setup(secure_gateway, referrer, tenant, programme)


@pytest_asyncio.fixture
async def referrer(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    async with setup.referrer.client() as client:
        yield client


@pytest_asyncio.fixture
async def provider(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    async with setup.tenant.provider.client() as client:
        yield client


def assert_problem(
    response: httpx.Response, statuses: set[int], field: str | tuple[str, ...] | None = None
) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["title"] and "detail" in body
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        wanted = (field,) if isinstance(field, str) else field
        named = any(f == w or f.startswith((w + ".", w + "[")) for f in fields for w in wanted)
        assert named, (field, body.get("errors"))


async def post_json(client: httpx.AsyncClient, url: str, body: Any) -> httpx.Response:
    """Posted as ASCII JSON, so a lone surrogate travels as its escape (httpx cannot
    encode it raw; a partner's JSON library would send exactly this)."""
    return await client.post(
        url, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


async def stored_referrals(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/referrals", params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- refused, nothing stored ---------------------------------------------------------


async def test_an_oversized_body_is_413_before_any_service(
    setup: Setup, referrer: httpx.AsyncClient
) -> None:
    body = referral_body(setup.programme, notes="n" * (2 * 1024 * 1024))
    response = await referrer.post("/v1/referrals", json=body)
    assert_problem(response, {413})
    # Streamed without a length, too: the limit counts the bytes as they arrive.
    raw = json.dumps(body).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    streamed = await referrer.post(
        "/v1/referrals", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, {413})
    assert await stored_referrals(referrer) == []


@pytest.mark.parametrize("depth", [64, 5_000, 100_000])
async def test_deeply_nested_json_is_refused(
    setup: Setup, referrer: httpx.AsyncClient, depth: int
) -> None:
    nested = "[" * depth + "]" * depth
    raw = json.dumps(referral_body(setup.programme)).replace('"free text"', nested)
    response = await referrer.post(
        "/v1/referrals", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert_problem(response, {422}, ("notes", "body"))
    assert await stored_referrals(referrer) == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_a_body_that_is_not_json_is_refused(
    setup: Setup, referrer: httpx.AsyncClient, content_type: str | None
) -> None:
    raw = json.dumps(referral_body(setup.programme)).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = await referrer.post("/v1/referrals", content=raw, headers=headers)
    assert_problem(response, {415, 422})
    assert await stored_referrals(referrer) == []


async def test_invalid_utf8_is_422_naming_the_body(
    setup: Setup, referrer: httpx.AsyncClient, provider: httpx.AsyncClient
) -> None:
    raw = json.dumps(referral_body(setup.programme)).encode().replace(b"free text", b"\xff\xfe")
    response = await referrer.post(
        "/v1/referrals", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, {422}, "body")
    sessions = b'{"sessions": [{"external_id": "\xc3\x28"}]}'
    synced = await provider.post(
        "/v1/sessions/bulk", content=sessions, headers={"content-type": "application/json"}
    )
    assert_problem(synced, {422}, "body")
    assert await stored_referrals(referrer) == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("person.family_name", "x" * 200_000),
        ("person.given_name", "Sam\x00Taylor"),
        ("person.family_name", "\ud800"),
        ("external_ref", "JCP\x00-1"),
        ("notes", "y" * 900_000),
    ],
    ids=["huge-name", "nul-in-name", "lone-surrogate", "nul-in-ref", "huge-notes"],
)
async def test_hostile_strings_in_a_referral_are_422_naming_the_field(
    setup: Setup, referrer: httpx.AsyncClient, where: str, value: str
) -> None:
    body = referral_body(setup.programme)
    *parents, leaf = where.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    response = await post_json(referrer, "/v1/referrals", body)
    assert_problem(response, {422}, where)
    assert await stored_referrals(referrer) == []


@pytest.mark.parametrize("value", ["kw\x00", "\ud83d", "k" * 100_000])
async def test_hostile_strings_in_casework_are_422(
    setup: Setup, provider: httpx.AsyncClient, value: str
) -> None:
    pid = setup.tenant.participant["id"]
    moved = await post_json(provider, f"/v1/participants/{pid}/key-worker", {"key_worker": value})
    assert_problem(moved, {422}, "key_worker")
    job = await post_json(
        provider,
        f"/v1/participants/{pid}/employment",
        {
            "employer": value,
            "started_on": "2024-06-01",
            "hours_per_week": 20,
            "weekly_earnings_pence": 1,
            "self_employed": False,
        },
    )
    assert_problem(job, {422}, "employer")
    item = {
        "external_id": unique("crm"),
        "participant_id": pid,
        "occurred_at": "2024-03-01T10:00:00+00:00",
        "kind": "phone",
        "attendance": "attended",
        "modified_at": "2024-03-01T12:00:00+00:00",
        "notes": value if len(value) < 10 else value * 2,
    }
    synced = await post_json(provider, "/v1/sessions/bulk", {"sessions": [item]})
    if synced.status_code == 200:  # per-item errors: the batch answers for each item
        assert [r["status"] for r in synced.json()["results"]] == ["error"], synced.text
    else:
        # A bulk body is parsed strictly as a whole: a lone surrogate is invalid JSON.
        assert_problem(synced, {422}, ("sessions", "body"))
    seen = (await provider.get(f"/v1/participants/{pid}")).json()
    assert seen["key_worker"] == "kw" and len(seen["employment"]) == 1
    sessions = (await provider.get(f"/v1/participants/{pid}/sessions")).json()["items"]
    assert [s["external_id"] for s in sessions] == [setup.tenant.session_external_id]


@pytest.mark.parametrize("name", ["Wigan\x00Jobcentre", "\udfff", "n" * 5000])
async def test_hostile_partner_names_are_422_for_the_admin(setup: Setup, name: str) -> None:
    body = {"name": name, "kind": "jcp"}
    assert_problem(await post_json(setup.gateway.admin, "/admin/partners", body), {422}, "name")


@pytest.mark.parametrize("url", ["https://hooks.example.org/\x00", "https://\udfff.example.org/"])
async def test_hostile_webhook_urls_are_422(referrer: httpx.AsyncClient, url: str) -> None:
    body = {"url": url, "events": ["referral.status_changed"]}
    assert_problem(await post_json(referrer, "/v1/webhooks", body), {422}, "url")
    listed = await referrer.get("/v1/webhooks")
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("jcp", "/v1/referrals"),
        ("provider", "/v1/participants"),
        ("programme_office", "/v1/reports/performance"),
        ("programme_office", "/v1/reports/barriers"),
    ],
)
async def test_a_nul_in_a_query_parameter_is_4xx(setup: Setup, kind: str, path: str) -> None:
    partner = await setup.gateway.create_partner(kind)
    async with partner.client() as client:
        response = await client.get(path, params={"programme": "prog\x00; DROP TABLE x"})
    assert_problem(response, {404, 422})


# --- stored and returned verbatim, as text ---------------------------------------------


@pytest.mark.parametrize("text", INJECTIONS)
async def test_sql_and_script_fragments_are_just_text(
    setup: Setup, referrer: httpx.AsyncClient, provider: httpx.AsyncClient, text: str
) -> None:
    ref = unique("JCP")
    body = referral_body(setup.programme, external_ref=ref, notes=text)
    body["person"]["family_name"] = text
    created = await referrer.post("/v1/referrals", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/json"
    referral = created.json()
    assert referral["person"]["family_name"] == text
    fetched = await referrer.get(f"/v1/referrals/{referral['id']}")
    assert fetched.headers["content-type"] == "application/json"
    assert fetched.json()["person"]["family_name"] == text
    assert fetched.json()["notes"] == text
    # Filters are parameters, never SQL: the injection finds nothing and breaks nothing.
    for params in ({"programme": text}, {"status": text}, {"cursor": text}):
        listed = await referrer.get("/v1/referrals", params=params)
        assert listed.status_code in (200, 422), listed.text
        if listed.status_code == 200:
            assert listed.json()["items"] == []
    # The key worker's session notes, likewise.
    pid = setup.tenant.participant["id"]
    item = {
        "external_id": ref,
        "participant_id": pid,
        "occurred_at": "2024-03-02T10:00:00+00:00",
        "kind": "phone",
        "attendance": "attended",
        "modified_at": "2024-03-02T12:00:00+00:00",
        "notes": text,
    }
    synced = await provider.post("/v1/sessions/bulk", json={"sessions": [item]})
    assert synced.json()["results"][0]["status"] == "created", synced.text
    sessions = (await provider.get(f"/v1/participants/{pid}/sessions")).json()["items"]
    assert {s["external_id"]: s["notes"] for s in sessions}[ref] == text


async def test_the_tables_survived_the_injections(
    secure_platform: RunningPlatform, setup: Setup, referrer: httpx.AsyncClient
) -> None:
    """After all of the above the referrer's referrals are exactly the ones it made."""
    stored = await stored_referrals(referrer)
    assert sorted(r["person"]["family_name"] for r in stored) == sorted(INJECTIONS)
