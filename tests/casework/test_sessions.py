"""`POST /v1/sessions/bulk` and `GET /v1/participants/{id}/sessions` (contract §3)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from services.casework.store.tables import sessions
from tests.casework.support import Casework

T = "2024-03-01T10:00:00+00:00"


def at(hour: int, minute: int = 0, day: int = 1) -> str:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC).isoformat()


def item(external_id: str, participant_id: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "external_id": external_id,
        "participant_id": participant_id,
        "occurred_at": T,
        "kind": "one_to_one",
        "duration_minutes": 45,
        "attendance": "attended",
        "modified_at": at(12),
        "notes": "talked about the CV",
    }
    values.update(overrides)
    return values


async def sync(client, *items: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/v1/sessions/bulk", json={"sessions": list(items)})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(items)
    return results


def statuses(results: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return [(r["external_id"], r["status"]) for r in results]


async def stored(client, participant_id: str) -> dict[str, dict[str, Any]]:
    response = await client.get(f"/v1/participants/{participant_id}/sessions")
    assert response.status_code == 200
    return {s["external_id"]: s for s in response.json()["items"]}


async def provider_session_count(casework: Casework, provider_id: uuid.UUID) -> int:
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(select(func.count()).where(sessions.c.provider_id == provider_id))
        ).scalar_one()


async def test_one_batch_returns_all_five_statuses_in_order(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    await sync(
        provider,
        item("same", pid),
        item("edited", pid),
        item("newer-stored", pid, modified_at=at(14)),
    )

    results = await sync(
        provider,
        item("brand-new", pid),
        item("same", pid),
        item("edited", pid, notes="rescheduled", modified_at=at(13)),
        item("newer-stored", pid, notes="an older edit", modified_at=at(13)),
        item("broken", pid, kind="carrier_pigeon"),
        # Same modified_at, different content: counts as updated.
        item("same", pid, duration_minutes=50),
    )

    assert statuses(results) == [
        ("brand-new", "created"),
        ("same", "unchanged"),
        ("edited", "updated"),
        ("newer-stored", "stale"),
        ("broken", "error"),
        ("same", "updated"),
    ]
    assert [r["error"] for r in results if r["status"] != "error"] == [None] * 5
    assert results[4]["error"].startswith("kind: ")

    state = await stored(provider, pid)
    assert set(state) == {"brand-new", "same", "edited", "newer-stored"}
    assert state["edited"]["notes"] == "rescheduled"
    assert state["newer-stored"]["notes"] == "talked about the CV"  # the stale edit ignored
    assert state["same"]["duration_minutes"] == 50


async def test_repeated_and_out_of_order_deliveries_converge(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    v1 = item("crm-991", pid, notes="v1", modified_at=at(12))
    v2 = item("crm-991", pid, notes="v2", attendance="did_not_attend", modified_at=at(13))
    v3 = item("crm-991", pid, notes="v3", modified_at=at(14))

    # The newer version first, then the older one, then the newer again: in one batch.
    assert statuses(await sync(provider, v2, v1, v2)) == [
        ("crm-991", "created"),
        ("crm-991", "stale"),
        ("crm-991", "unchanged"),
    ]
    # The CRM resends everything, out of order, in later batches.
    assert statuses(await sync(provider, v1, v2)) == [
        ("crm-991", "stale"),
        ("crm-991", "unchanged"),
    ]
    assert statuses(await sync(provider, v3, v2, v1, v3)) == [
        ("crm-991", "updated"),
        ("crm-991", "stale"),
        ("crm-991", "stale"),
        ("crm-991", "unchanged"),
    ]
    state = (await stored(provider, pid))["crm-991"]
    assert state["notes"] == "v3"
    assert state["attendance"] == "attended"
    assert await provider_session_count(casework, provider_id) == 1


async def test_the_same_instant_written_differently_is_unchanged(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    await sync(provider, item("tz", pid, occurred_at=T, modified_at="2024-03-01T12:00:00Z"))
    results = await sync(
        provider,
        item(
            "tz",
            pid,
            occurred_at="2024-03-01T11:00:00+01:00",
            modified_at="2024-03-01T07:00:00-05:00",
        ),
    )
    assert statuses(results) == [("tz", "unchanged")]


async def test_a_full_batch_of_1000_is_stored(casework: Casework, provider, provider_id) -> None:
    pids = [(await casework.participant(provider, provider_id))["id"] for _ in range(3)]
    batch = [item(f"s-{i:04d}", pids[i % 3], occurred_at=at(9, i % 60)) for i in range(1000)]

    results = await sync(provider, *batch)

    assert {r["status"] for r in results} == {"created"}
    assert [r["external_id"] for r in results] == [f"s-{i:04d}" for i in range(1000)]
    assert await provider_session_count(casework, provider_id) == 1000
    assert {r["status"] for r in await sync(provider, *batch)} == {"unchanged"}


async def test_more_than_1000_sessions_is_413_and_stores_nothing(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    batch = [item(f"s-{i}", pid) for i in range(1001)]

    response = await provider.post("/v1/sessions/bulk", json={"sessions": batch})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert await provider_session_count(casework, provider_id) == 0


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"[]", "body"),
        (b'"sessions"', "body"),
        (b"{}", "sessions"),
        (b'{"session": []}', "sessions"),
        (b'{"sessions": {"external_id": "x"}}', "sessions"),
        (b'{"sessions": null}', "sessions"),
        (b"", "body"),
    ],
)
async def test_a_body_that_is_not_a_sessions_list_is_422(
    casework: Casework, provider, content: bytes, field: str
) -> None:
    response = await provider.post(
        "/v1/sessions/bulk", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_an_empty_batch_is_fine(casework: Casework, provider) -> None:
    assert await sync(provider) == []


async def test_each_bad_item_is_an_error_naming_its_field_and_the_rest_apply(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    good = item("good", pid)
    missing = {k: v for k, v in item("missing", pid).items() if k != "attendance"}
    cases: list[tuple[Any, str | None, str]] = [
        (item("naive", pid, occurred_at="2024-03-01T10:00:00"), "naive", "occurred_at"),
        (item("epoch", pid, modified_at=1709294400), "epoch", "modified_at"),
        (item("epoch-text", pid, occurred_at="1709294400"), "epoch-text", "occurred_at"),
        (item("date-only", pid, occurred_at="2024-03-01"), "date-only", "occurred_at"),
        (item("kind", pid, kind="ONE_TO_ONE"), "kind", "kind"),
        (item("attendance", pid, attendance="late"), "attendance", "attendance"),
        (missing, "missing", "attendance"),
        (item("bool", pid, duration_minutes=True), "bool", "duration_minutes"),
        (item("float", pid, duration_minutes=45.5), "float", "duration_minutes"),
        (item("string", pid, duration_minutes="45"), "string", "duration_minutes"),
        (item("negative", pid, duration_minutes=-1), "negative", "duration_minutes"),
        (item("day", pid, duration_minutes=1441), "day", "duration_minutes"),
        (item("pid", "not-a-uuid"), "pid", "participant_id"),
        (item("notes", pid, notes=17), "notes", "notes"),
        (item("long", pid, notes="x" * 10_001), "long", "notes"),
        (item("extra", pid, room="B2"), "extra", "room"),
        (item("nul", pid, notes="a\u0000b"), "nul", "notes"),
        (item("nul\u0000id", pid), "nul\u0000id", "external_id"),
        (item("", pid), "", "external_id"),
        (item(17, pid), None, "external_id"),  # type: ignore[arg-type]
        ({**item("x", pid), "external_id": None}, None, "external_id"),
        ("not an object", None, "item"),
        (None, None, "item"),
    ]
    results = await sync(provider, good, *(c[0] for c in cases), good)

    assert results[0] == {"external_id": "good", "status": "created", "error": None}
    assert results[-1] == {"external_id": "good", "status": "unchanged", "error": None}
    for result, (_, external_id, field) in zip(results[1:-1], cases, strict=True):
        assert result["status"] == "error"
        assert result["external_id"] == external_id
        assert result["error"].startswith(f"{field}:"), result
    assert set(await stored(provider, pid)) == {"good"}


async def test_a_participant_of_another_provider_is_an_error_that_reveals_nothing(
    casework: Casework, provider, provider_id, other_provider
) -> None:
    mine = (await casework.participant(provider, provider_id))["id"]
    other_id = uuid.uuid4()
    async with casework.provider(other_id) as other:
        theirs = (await casework.participant(other, other_id))["id"]

    results = await sync(
        provider,
        item("theirs", theirs),
        item("nobody", str(uuid.uuid4())),
        item("mine", mine),
    )

    assert statuses(results) == [("theirs", "error"), ("nobody", "error"), ("mine", "created")]
    assert results[0]["error"] == results[1]["error"] == "participant_id: no such participant"
    async with casework.provider(other_id) as other:
        assert await stored(other, theirs) == {}


async def test_providers_sharing_an_external_id_do_not_collide(
    casework: Casework, provider, provider_id
) -> None:
    mine = (await casework.participant(provider, provider_id))["id"]
    other_id = uuid.uuid4()
    async with casework.provider(other_id) as other:
        theirs = (await casework.participant(other, other_id))["id"]
        assert statuses(await sync(other, item("crm-1", theirs, notes="theirs"))) == [
            ("crm-1", "created")
        ]
    assert statuses(await sync(provider, item("crm-1", mine, notes="mine"))) == [
        ("crm-1", "created")
    ]
    assert (await stored(provider, mine))["crm-1"]["notes"] == "mine"


async def test_session_dates_are_checked_against_the_participant(
    casework: Casework, provider, provider_id
) -> None:
    participant = await casework.participant(provider, provider_id)
    pid = participant["id"]
    exited = await provider.post(
        f"/v1/participants/{pid}/exit", json={"left_on": "2024-04-30", "reason": "completed"}
    )
    assert exited.status_code == 200
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()

    results = await sync(
        provider,
        item("before-referral", pid, occurred_at="2024-02-01T10:00:00+00:00"),
        item("in-support", pid, occurred_at="2024-04-30T10:00:00+01:00"),
        item("after-exit", pid, occurred_at="2024-05-01T10:00:00+01:00"),
        item("future-modified", pid, modified_at=future),
    )

    assert statuses(results) == [
        ("before-referral", "error"),
        ("in-support", "created"),
        ("after-exit", "error"),
        ("future-modified", "error"),
    ]
    assert "referral date" in results[0]["error"]
    assert "left" in results[2]["error"]


async def test_future_sessions_can_only_be_cancellations(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    next_week = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    results = await sync(
        provider,
        item("attended", pid, occurred_at=next_week),
        item("dna", pid, occurred_at=next_week, attendance="did_not_attend"),
        item("cancelled", pid, occurred_at=next_week, attendance="cancelled"),
    )
    assert statuses(results) == [
        ("attended", "error"),
        ("dna", "error"),
        ("cancelled", "created"),
    ]


async def test_a_time_that_leaves_the_calendar_in_utc_is_an_item_error(
    casework: Casework, provider, provider_id
) -> None:
    """Cancelled sessions may be in the future and modified_at only has to be past: at
    either end of the calendar an offset carries a time past year 9999 or before year 1
    in UTC, which cannot be stored. That item is an error; the rest still apply."""
    pid = (await casework.participant(provider, provider_id))["id"]
    results = await sync(
        provider,
        item("good", pid),
        item("far", pid, occurred_at="9999-12-31T23:00:00-05:00", attendance="cancelled"),
        item("early", pid, modified_at="0001-01-01T00:00:00+05:00"),
        item("last-day", pid, occurred_at="9999-12-31T23:00:00+00:00", attendance="cancelled"),
    )
    assert statuses(results) == [
        ("good", "created"),
        ("far", "error"),
        ("early", "error"),
        ("last-day", "created"),
    ]
    assert results[1]["error"].startswith("occurred_at:")
    assert results[2]["error"].startswith("modified_at:")
    assert set(await stored(provider, pid)) == {"good", "last-day"}


async def test_a_lone_surrogate_fails_its_item_not_the_batch(
    casework: Casework, provider, provider_id
) -> None:
    """A CRM cutting notes by UTF-16 length can split an emoji: JSON allows the lone
    escape, and one such note must not lose the 999 good sessions beside it."""
    pid = (await casework.participant(provider, provider_id))["id"]
    sent = [
        item("good", pid),
        item("split-emoji", pid, notes="great session \\ud83d"),
        item("id-\\udc00", pid),
    ]
    # The escaped backslash unescaped: the body carries the lone escapes themselves.
    raw = orjson.dumps({"sessions": sent}).replace(b"\\\\u", b"\\u")
    assert b'"great session \\ud83d"' in raw
    response = await provider.post(
        "/v1/sessions/bulk", content=raw, headers={"content-type": "application/json"}
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert statuses(results) == [("good", "created"), ("split-emoji", "error"), (None, "error")]
    assert results[1]["error"].startswith("notes:")
    assert results[2]["error"].startswith("external_id:")
    assert set(await stored(provider, pid)) == {"good"}


async def test_concurrent_syncs_of_the_same_sessions_agree(
    casework: Casework, provider, provider_id
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    keys = [f"race-{i}" for i in range(200)]
    batches = [
        [item(k, pid, notes=f"writer {w}", modified_at=at(12, w)) for k in keys] for w in range(4)
    ]
    responses = await asyncio.gather(
        *(provider.post("/v1/sessions/bulk", json={"sessions": b}) for b in batches)
    )
    assert [r.status_code for r in responses] == [200] * 4

    per_key: dict[str, list[str]] = {k: [] for k in keys}
    for response in responses:
        for result in response.json()["results"]:
            per_key[result["external_id"]].append(result["status"])
    for key, seen in per_key.items():
        assert seen.count("created") == 1, (key, seen)
        assert set(seen) <= {"created", "updated", "stale"}
    state = await stored(provider, pid)
    # Last modified wins, whichever writer committed last.
    assert {s["notes"] for s in state.values()} == {"writer 3"}
    assert await provider_session_count(casework, provider_id) == 200


async def test_sessions_are_listed_as_stored_oldest_first(
    casework: Casework, provider, provider_id, office
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    await sync(
        provider,
        item("third", pid, occurred_at=at(15)),
        item("first", pid, occurred_at=at(9), kind="phone", duration_minutes=None, notes=None),
        item("second", pid, occurred_at="2024-03-01T11:00:00+01:00"),  # 10:00 UTC
    )

    response = await provider.get(f"/v1/participants/{pid}/sessions")

    items = response.json()["items"]
    assert [s["external_id"] for s in items] == ["first", "second", "third"]
    assert items[0] == {
        "external_id": "first",
        "participant_id": pid,
        "occurred_at": items[0]["occurred_at"],
        "kind": "phone",
        "duration_minutes": None,
        "attendance": "attended",
        "modified_at": items[0]["modified_at"],
        "notes": None,
    }
    assert datetime.fromisoformat(items[0]["occurred_at"]) == datetime.fromisoformat(at(9))
    assert datetime.fromisoformat(items[1]["occurred_at"]) == datetime.fromisoformat(T)
    # The programme office reads every provider's casework.
    assert (await office.get(f"/v1/participants/{pid}/sessions")).json()["items"] == items


async def test_another_provider_cannot_read_the_sessions(
    casework: Casework, provider, provider_id, other_provider, referrer
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    await sync(provider, item("private", pid))
    assert (await other_provider.get(f"/v1/participants/{pid}/sessions")).status_code == 404
    assert (await provider.get("/v1/participants/not-an-id/sessions")).status_code == 404
    assert (await referrer.get(f"/v1/participants/{pid}/sessions")).status_code == 403


@pytest.mark.parametrize("kind", ["jcp", "probation", "treatment", "programme_office"])
async def test_only_providers_sync(casework: Casework, kind: str) -> None:
    async with casework.app.client(uuid.uuid4(), kind) as client:
        response = await client.post("/v1/sessions/bulk", json={"sessions": []})
    assert response.status_code == 403


async def test_notes_never_reach_the_logs(
    casework: Casework, provider, provider_id, caplog: pytest.LogCaptureFixture
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    secret = "disclosed a relapse last weekend"
    with caplog.at_level(logging.DEBUG):
        await sync(provider, item("private", pid, notes=secret), item("bad", pid, kind=secret))
    assert caplog.records, "the sync should have logged something"
    assert secret not in caplog.text
    assert all(secret not in orjson.dumps(str(r.__dict__)).decode() for r in caplog.records)
