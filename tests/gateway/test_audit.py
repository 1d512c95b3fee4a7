"""The audit log: who, what (method, route template, resource id), when and with what
result, for every call; never a body, a query string or anything personal; queryable
by the programme office."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.gateway import store
from tests.gateway.harness import GatewayUnderTest, Server, gateway_settings

NINO = "AB123456C"


async def _rows(gateway: GatewayUnderTest, **where) -> list:
    await gateway.flush_audit()
    query = select(store.audit_log).order_by(store.audit_log.c.id)
    for column, value in where.items():
        query = query.where(store.audit_log.c[column] == value)
    async with gateway.runtime.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_each_call_is_recorded_with_who_what_when_and_result(
    gateway: GatewayUnderTest,
) -> None:
    provider = await gateway.partner("provider")
    referral = str(uuid.uuid4())
    started = datetime.now(UTC)
    async with gateway.client(provider.api_key) as client:
        ok = await client.get(f"/v1/referrals/{referral}", params={"nino": NINO})
        forbidden = await client.post(f"/v1/outcome-claims/{uuid.uuid4()}/decision", json={})
    rows = await _rows(gateway, partner_id=uuid.UUID(provider.id))
    assert [(r.method, r.route, r.status) for r in rows] == [
        ("GET", "/v1/referrals/{id}", 200),
        ("POST", "/v1/outcome-claims/{id}/decision", 403),
    ]
    first = rows[0]
    assert first.actor == "partner" and first.resource_id == referral
    assert first.key_id is not None
    assert first.request_id == ok.headers["x-request-id"]
    assert rows[1].request_id == forbidden.headers["x-request-id"]
    assert started - timedelta(seconds=5) <= first.at <= datetime.now(UTC)
    assert first.duration_ms >= 0


async def test_a_created_resource_is_recorded_by_the_id_in_its_location(
    gateway: GatewayUnderTest,
) -> None:
    provider = await gateway.partner("provider")
    participant = str(uuid.uuid4())
    async with gateway.client(provider.api_key) as client:
        response = await client.post(
            "/v1/participants",
            params={"echo_status": "201", "echo_location": f"/v1/participants/{participant}"},
            json={"referral_id": str(uuid.uuid4())},
        )
    assert response.status_code == 201
    [row] = await _rows(gateway, partner_id=uuid.UUID(provider.id))
    assert (row.route, row.status, row.resource_id) == ("/v1/participants", 201, participant)


async def test_no_body_query_string_or_personal_data_is_ever_recorded(
    gateway: GatewayUnderTest,
) -> None:
    referrer = await gateway.partner("jcp")
    person = {"given_name": "Samantha", "family_name": "Quixotic", "nino": NINO}
    async with gateway.client(referrer.api_key) as client:
        await client.post("/v1/referrals", params={"phone": "07700900123"}, json=person)
        # An id that is not an id (a NINO typed in the wrong place) is not recorded.
        await client.get(f"/v1/referrals/{NINO}")
        await client.get(f"/v1/referrals/{NINO}/history", params={"q": "Quixotic"})
    rows = await _rows(gateway, partner_id=uuid.UUID(referrer.id))
    assert [(r.route, r.resource_id) for r in rows] == [
        ("/v1/referrals", None),
        ("/v1/referrals/{id}", None),
        ("/v1/referrals/{unlisted}", None),
    ]
    dumped = str([tuple(r) for r in await _rows(gateway)]).encode()
    for secret in (NINO.encode(), b"Quixotic", b"Samantha", b"07700900123", b"phone"):
        assert secret not in dumped


async def test_refused_and_admin_calls_are_recorded_too(gateway: GatewayUnderTest) -> None:
    marker = uuid.uuid4().hex
    async with gateway.client("pk_nosuchke_" + "A" * 43) as client:
        await client.get("/v1/referrals", headers={"x-request-id": marker})
    [anonymous] = await _rows(gateway, request_id=marker)
    assert (anonymous.actor, anonymous.partner_id, anonymous.status) == ("anonymous", None, 401)
    assert anonymous.route == "/v1/referrals"

    response = await gateway.admin.admin.post(
        "/admin/partners", json={"name": "Bolton Probation", "kind": "probation"}
    )
    [admin] = await _rows(gateway, request_id=response.headers["x-request-id"])
    assert (admin.actor, admin.method, admin.route, admin.status) == (
        "admin",
        "POST",
        "/admin/partners",
        201,
    )
    assert admin.resource_id == response.json()["id"]

    async with gateway.client(headers={"x-request-id": marker + "-adm"}) as client:
        await client.post("/admin/partners", json={"name": "x", "kind": "jcp"})
    [refused] = await _rows(gateway, request_id=marker + "-adm")
    assert (refused.actor, refused.status) == ("anonymous", 401)


async def test_the_programme_office_queries_the_log_by_partner_and_time(
    gateway: GatewayUnderTest,
) -> None:
    office = await gateway.partner("programme_office")
    one, two = await gateway.partner("jcp"), await gateway.partner("treatment")
    before = datetime.now(UTC)
    for partner, calls in ((one, 3), (two, 2)):
        async with gateway.client(partner.api_key) as client:
            for _ in range(calls):
                await client.get("/v1/referrals")
    await gateway.flush_audit()

    async with gateway.client(office.api_key) as client:
        page = await client.get(
            "/v1/audit", params={"partner_id": one.id, "since": before.isoformat()}
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert len(items) == 3 and page.json()["next_cursor"] is None
        assert {i["partner_id"] for i in items} == {one.id}
        assert all(i["route"] == "/v1/referrals" and i["status"] == 200 for i in items)
        assert set(items[0]) == {
            "at",
            "actor",
            "partner_id",
            "key_id",
            "method",
            "route",
            "resource_id",
            "status",
            "request_id",
            "duration_ms",
        }

        # Paged, oldest first, with an opaque cursor.
        first = await client.get(
            "/v1/audit", params={"partner_id": one.id, "since": before.isoformat(), "limit": 2}
        )
        assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
        rest = await client.get(
            "/v1/audit",
            params={
                "partner_id": one.id,
                "since": before.isoformat(),
                "limit": 2,
                "cursor": first.json()["next_cursor"],
            },
        )
        assert [i["request_id"] for i in first.json()["items"] + rest.json()["items"]] == [
            i["request_id"] for i in items
        ]
        assert rest.json()["next_cursor"] is None

        # since / until bound the window; a '+' sent unencoded still reads as an offset.
        later = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
        none = await client.get(f"/v1/audit?partner_id={one.id}&since={later.isoformat()}")
        assert none.status_code == 200 and none.json()["items"] == []
        older = await client.get(
            "/v1/audit", params={"partner_id": two.id, "until": before.isoformat()}
        )
        assert older.json()["items"] == []
        both = await client.get("/v1/audit", params={"since": before.isoformat(), "limit": 1000})
        seen = {i["partner_id"] for i in both.json()["items"]}
        assert {one.id, two.id} <= seen


async def test_bad_audit_queries_are_422_naming_the_field(gateway: GatewayUnderTest) -> None:
    office = await gateway.partner("programme_office")
    async with gateway.client(office.api_key) as client:
        for params, field in [
            ({"partner_id": "nope"}, "partner_id"),
            ({"since": "yesterday"}, "since"),
            ({"until": "2024-13-01T00:00:00Z"}, "until"),
            ({"limit": "1001"}, "limit"),
            ({"limit": "0"}, "limit"),
            ({"cursor": "%%%"}, "cursor"),
        ]:
            response = await client.get("/v1/audit", params=params)
            assert response.status_code == 422, (params, response.text)
            assert field in [e["field"] for e in response.json()["errors"]]


async def test_only_the_programme_office_reads_the_audit_log(gateway: GatewayUnderTest) -> None:
    for kind in ("jcp", "probation", "treatment", "provider"):
        partner = await gateway.partner(kind)
        async with gateway.client(partner.api_key) as client:
            assert (await client.get("/v1/audit")).status_code == 403


async def test_rows_still_buffered_are_written_when_the_gateway_stops(
    gateway: GatewayUnderTest, echo: Server
) -> None:
    settings = gateway_settings(
        gateway.sandbox,
        upstream=echo.url,
        audit_flush_seconds=3600,  # nothing is written until shutdown
        run_consumer=False,
        run_webhook_dispatcher=False,
    )
    other = await GatewayUnderTest(gateway.sandbox, settings).start()
    partner = await other.partner("jcp")
    marker = uuid.uuid4().hex
    async with other.client(partner.api_key) as client:
        assert (await client.get("/v1/referrals", headers={"x-request-id": marker})).is_success
    assert await _rows(gateway, request_id=marker) == []  # still in the buffer
    await other.stop()
    [row] = await _rows(gateway, request_id=marker)
    assert row.partner_id == uuid.UUID(partner.id) and row.status == 200
