"""API keys: issued once, stored only as a hash, revocable at once, rotatable with an
overlap; the admin API needs the admin token (contract §1)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select

from services.gateway import store
from tests.gateway.harness import GatewayUnderTest, gateway_settings
from tests.support.events import eventually


async def _status(gateway: GatewayUnderTest, key: str, path: str = "/v1/referrals") -> int:
    async with gateway.client(key) as client:
        return (await client.get(path)).status_code


def _assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and "detail" in body


async def test_admin_routes_need_the_admin_token(gateway: GatewayUnderTest) -> None:
    partner = await gateway.partner("jcp")
    body = {"name": "Wigan Jobcentre", "kind": "jcp"}
    cases = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {partner.api_key}"},  # a partner key is not the admin's
        {"Authorization": f"Basic {gateway.sandbox.config.admin_token}"},
    ]
    async with gateway.client() as client:
        for headers in cases:
            for method, path in [
                ("POST", "/admin/partners"),
                ("GET", "/admin/partners"),
                ("POST", "/admin/programmes"),
                ("GET", f"/admin/partners/{partner.id}/keys"),
            ]:
                response = await client.request(method, path, json=body, headers=headers)
                _assert_problem(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
        # Even an unparseable body is refused for want of the token, not parsed.
        response = await client.post(
            "/admin/partners", content=b"{not json", headers={"content-type": "application/json"}
        )
        _assert_problem(response, 401)


async def test_creating_a_partner_shows_its_key_once_and_stores_only_a_hash(
    gateway: GatewayUnderTest,
) -> None:
    response = await gateway.admin.admin.post(
        "/admin/partners", json={"name": "  Wigan Jobcentre  ", "kind": "jcp"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Wigan Jobcentre" and created["kind"] == "jcp"
    key = created["api_key"]
    assert key.startswith(f"pk_{created['key_prefix']}_") and len(key) > 40
    assert await _status(gateway, key) == 200

    keys = await gateway.admin.admin.get(f"/admin/partners/{created['id']}/keys")
    assert keys.status_code == 200
    [listed] = keys.json()["items"]
    assert listed["prefix"] == created["key_prefix"] and listed["status"] == "active"
    assert key not in keys.text and "api_key" not in listed

    async with gateway.runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(store.api_keys).where(store.api_keys.c.id == listed["id"]))
        ).one()
    assert bytes(row.digest) == hashlib.sha256(key.encode()).digest()
    assert key.encode() not in b"".join(str(v).encode() for v in row)
    secret_part = key.rsplit("_", 1)[1]
    assert all(secret_part not in str(value) for value in row)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "kind": "council"}, "kind"),
        ({"name": "", "kind": "jcp"}, "name"),
        ({"name": "   ", "kind": "jcp"}, "name"),
        ({"kind": "jcp"}, "name"),
        ({"name": "X"}, "kind"),
        ({"name": 7, "kind": "jcp"}, "name"),
        ({"name": "X", "kind": "jcp", "admin": True}, "admin"),
        ({"name": "X" * 201, "kind": "jcp"}, "name"),
    ],
)
async def test_a_malformed_partner_is_refused_naming_the_field(
    gateway: GatewayUnderTest, body: dict, field: str
) -> None:
    before = await gateway.admin.admin.get("/admin/partners", params={"limit": 1000})
    response = await gateway.admin.admin.post("/admin/partners", json=body)
    _assert_problem(response, 422)
    assert field in [e["field"] for e in response.json()["errors"]]
    after = await gateway.admin.admin.get("/admin/partners", params={"limit": 1000})
    assert len(after.json()["items"]) == len(before.json()["items"])


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer  pk_x",
        "Token abc",
        "Bearer pk_short",
        "Bearer pk_abcdefgh_" + "A" * 43,  # well formed, never issued
        "Bearer " + "x" * 5000,
        "Bearer pk_ABCDEFGH_" + "A" * 43,
        "Bearer pk_abcdefgh-" + "A" * 43,
    ],
)
async def test_missing_malformed_and_unknown_keys_get_401_with_a_problem_body(
    gateway: GatewayUnderTest, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with gateway.client(headers=headers) as client:
        for method, path in [
            ("GET", "/v1/referrals"),
            ("POST", "/v1/referrals"),
            ("GET", "/v1/webhooks"),
            ("GET", "/v1/audit"),
            ("GET", "/v1/no-such-thing"),
        ]:
            response = await client.request(method, path)
            _assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_refused(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("provider")
    forged = partner.api_key[:-4] + ("AAAA" if not partner.api_key.endswith("AAAA") else "BBBB")
    assert await _status(gateway, forged) == 401
    assert await _status(gateway, partner.api_key) == 200


async def test_an_additional_key_overlaps_and_a_revoked_key_fails_at_once(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("probation")
    old = partner.api_key
    assert await _status(gateway, old) == 200  # now cached in the gateway

    issued = await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys")
    assert issued.status_code == 201, issued.text
    new = issued.json()["api_key"]
    assert new != old
    # Both work while the partner moves its systems over.
    assert await _status(gateway, old) == 200
    assert await _status(gateway, new) == 200

    keys = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()["items"]
    old_id = next(k["id"] for k in keys if old.startswith(f"pk_{k['prefix']}_"))
    revoked = await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys/{old_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    # The very next call with it fails, though it was cached a moment ago.
    assert await _status(gateway, old) == 401
    assert await _status(gateway, new) == 200

    again = await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys/{old_id}/revoke")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert await _status(gateway, old) == 401


async def test_delete_revokes_a_key_too(gateway: GatewayUnderTest) -> None:
    partner = await gateway.partner("treatment")
    key_id = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()["items"][
        0
    ]["id"]
    assert await _status(gateway, partner.api_key) == 200
    response = await gateway.admin.admin.delete(f"/admin/partners/{partner.id}/keys/{key_id}")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert await _status(gateway, partner.api_key) == 401


async def test_keys_of_another_partner_or_unknown_partners_are_404(
    gateway: GatewayUnderTest,
) -> None:
    one, other = await gateway.partner("jcp"), await gateway.partner("jcp")
    other_key = (await gateway.admin.admin.get(f"/admin/partners/{other.id}/keys")).json()["items"][
        0
    ]["id"]
    response = await gateway.admin.admin.post(f"/admin/partners/{one.id}/keys/{other_key}/revoke")
    _assert_problem(response, 404)
    assert await _status(gateway, other.api_key) == 200
    unknown = "00000000-0000-4000-8000-000000000000"
    _assert_problem(await gateway.admin.admin.post(f"/admin/partners/{unknown}/keys"), 404)
    _assert_problem(await gateway.admin.admin.get(f"/admin/partners/{unknown}"), 404)
    _assert_problem(await gateway.admin.admin.get("/admin/partners/not-a-uuid"), 422)


async def test_rotation_keeps_the_old_key_working_for_the_overlap_then_not(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("provider")
    key_id = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()["items"][
        0
    ]["id"]
    rotated = await gateway.admin.admin.post(
        f"/admin/partners/{partner.id}/keys/{key_id}/rotate", json={"overlap_seconds": 2}
    )
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    assert body["old_key"]["status"] == "expiring" and body["old_key"]["expires_at"]
    new = body["new_key"]["api_key"]
    assert await _status(gateway, partner.api_key) == 200
    assert await _status(gateway, new) == 200

    async def old_key_expired() -> None:
        assert await _status(gateway, partner.api_key) == 401

    await eventually(old_key_expired, timeout=10)
    assert await _status(gateway, new) == 200
    keys = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()["items"]
    assert sorted(k["status"] for k in keys) == ["active", "expired"]


async def test_rotation_without_overlap_retires_the_old_key_at_once(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("jcp")
    assert await _status(gateway, partner.api_key) == 200
    key_id = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()["items"][
        0
    ]["id"]
    rotated = await gateway.admin.admin.post(
        f"/admin/partners/{partner.id}/keys/{key_id}/rotate", json={"overlap_seconds": 0}
    )
    assert rotated.status_code == 201
    assert await _status(gateway, partner.api_key) == 401
    assert await _status(gateway, rotated.json()["new_key"]["api_key"]) == 200
    # A revoked key cannot be rotated; malformed overlaps are refused.
    await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys/{key_id}/revoke")
    again = await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys/{key_id}/rotate")
    _assert_problem(again, 409)
    for overlap in (-1, "soon", 10**9, 1.5):
        bad = await gateway.admin.admin.post(
            f"/admin/partners/{partner.id}/keys/{key_id}/rotate",
            json={"overlap_seconds": overlap},
        )
        _assert_problem(bad, 422)


async def test_a_key_revoked_through_one_replica_fails_on_another(
    gateway: GatewayUnderTest, echo
) -> None:
    other = await GatewayUnderTest(
        gateway.sandbox,
        gateway_settings(
            gateway.sandbox, upstream=echo.url, run_consumer=False, run_webhook_dispatcher=False
        ),
    ).start()
    try:
        partner = await gateway.partner("jcp")
        # Both replicas have the key cached.
        assert await _status(gateway, partner.api_key) == 200
        assert await _status(other, partner.api_key) == 200
        key_id = (await gateway.admin.admin.get(f"/admin/partners/{partner.id}/keys")).json()[
            "items"
        ][0]["id"]
        response = await gateway.admin.admin.post(
            f"/admin/partners/{partner.id}/keys/{key_id}/revoke"
        )
        assert response.status_code == 200

        async def refused_by_the_other_replica() -> None:
            assert await _status(other, partner.api_key) == 401

        # NOTIFY reaches the other replica within milliseconds of the commit; the
        # cache TTL (30 s here) is not what makes this pass.
        await eventually(refused_by_the_other_replica, timeout=5)
        # And a key issued through one replica works through the other at once.
        issued = await gateway.admin.admin.post(f"/admin/partners/{partner.id}/keys")
        assert await _status(other, issued.json()["api_key"]) == 200
    finally:
        await other.stop()


async def test_many_concurrent_calls_with_a_fresh_key_all_succeed(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("jcp")
    async with gateway.client(partner.api_key) as client:
        responses = await asyncio.gather(*(client.get("/v1/referrals") for _ in range(40)))
    assert [r.status_code for r in responses] == [200] * 40


async def test_a_prefix_already_taken_is_never_reused(
    gateway: GatewayUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.gateway import domain

    first = await gateway.partner("jcp")
    taken = domain.key_prefix(first.api_key)
    real = domain.generate_api_key
    calls = iter([domain.IssuedKey(taken, f"pk_{taken}_" + "Z" * 43)])
    monkeypatch.setattr(domain, "generate_api_key", lambda: next(calls, None) or real())
    second = await gateway.partner("jcp")
    assert domain.key_prefix(second.api_key) != taken
    assert await _status(gateway, first.api_key) == 200
    assert await _status(gateway, second.api_key) == 200
