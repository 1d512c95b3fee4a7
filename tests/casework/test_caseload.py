"""`GET /v1/participants`: the list, the key workers' caseload view, and who sees what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from tests.casework.support import Casework, days_ago, programme_code


def attended(pid: str, external_id: str, days: int, attendance: str = "attended") -> dict:
    # Midday UK time that many days ago, so the UK date is exactly `days` ago.
    moment = datetime.combine(days_ago(days), time(12, 0), tzinfo=UTC)
    return {
        "external_id": external_id,
        "participant_id": pid,
        "occurred_at": moment.isoformat(),
        "kind": "one_to_one",
        "duration_minutes": 30,
        "attendance": attendance,
        "modified_at": datetime.now(UTC).isoformat(),
    }


async def join(
    casework: Casework, client, provider_id, programme: str, attached_days_ago: int, **kw: Any
) -> dict[str, Any]:
    day = days_ago(attached_days_ago)
    return await casework.participant(
        client, provider_id, programme=programme, attached_on=day, referred_on=day, **kw
    )


@dataclass
class Caseload:
    programme: str
    people: dict[str, dict[str, Any]]

    def id(self, name: str) -> str:
        return self.people[name]["id"]

    def named(self, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        names = {p["id"]: name for name, p in self.people.items()}
        return {names[item["id"]]: item for item in items}


@pytest.fixture
async def caseload(casework: Casework, provider, provider_id) -> Caseload:
    """A small caseload of one provider, in one programme."""
    programme = programme_code()
    people = {
        "seen-recently": await join(casework, provider, provider_id, programme, 60),
        "missed-since": await join(casework, provider, provider_id, programme, 59),
        "new": await join(casework, provider, provider_id, programme, 10),
        "never-seen": await join(casework, provider, provider_id, programme, 40),
        "exited": await join(casework, provider, provider_id, programme, 50),
        "other-worker": await join(
            casework, provider, provider_id, programme, 30, key_worker="kw-22"
        ),
    }
    ids = {name: p["id"] for name, p in people.items()}
    response = await provider.post(
        "/v1/sessions/bulk",
        json={
            "sessions": [
                attended(ids["seen-recently"], "a1", 40),
                attended(ids["seen-recently"], "a2", 5),
                attended(ids["missed-since"], "b1", 30),
                attended(ids["missed-since"], "b2", 2, attendance="did_not_attend"),
                attended(ids["missed-since"], "b3", 1, attendance="cancelled"),
                attended(ids["other-worker"], "f1", 25),
            ]
        },
    )
    assert {r["status"] for r in response.json()["results"]} == {"created"}
    exit_on = days_ago(3).isoformat()
    left = await provider.post(
        f"/v1/participants/{ids['exited']}/exit", json={"left_on": exit_on, "reason": "other"}
    )
    assert left.status_code == 200
    return Caseload(programme, people)


async def test_the_caseload_flags_who_has_not_been_seen_for_n_days(provider, caseload) -> None:
    programme = caseload.programme
    response = await provider.get(
        "/v1/participants", params={"programme": programme, "no_contact_days": 21}
    )
    assert response.status_code == 200, response.text
    items = caseload.named(response.json()["items"])

    # Exited participants are no one's caseload.
    assert set(items) == {"seen-recently", "missed-since", "new", "never-seen", "other-worker"}
    assert {name: i["no_recent_contact"] for name, i in items.items()} == {
        "seen-recently": False,
        "missed-since": True,  # a missed and a cancelled session are not contact
        "new": False,  # attached 10 days ago: the attachment meeting counts
        "never-seen": True,
        "other-worker": True,
    }
    assert {name: i["days_without_contact"] for name, i in items.items()} == {
        "seen-recently": 5,
        "missed-since": 30,
        "new": 10,
        "never-seen": 40,
        "other-worker": 25,
    }
    assert items["never-seen"]["last_attended_at"] is None
    assert items["never-seen"]["last_attended_session"] is None
    last = datetime.fromisoformat(items["seen-recently"]["last_attended_at"])
    assert last.date() == days_ago(5)
    assert items["seen-recently"]["last_attended_session"] == {
        "external_id": "a2",
        "occurred_at": items["seen-recently"]["last_attended_at"],
        "kind": "one_to_one",
        "duration_minutes": 30,
    }
    # The missed and cancelled sessions since are not the last *attended* one.
    assert items["missed-since"]["last_attended_session"]["external_id"] == "b1"


async def test_the_boundary_day_counts_as_no_contact(provider, caseload) -> None:
    programme = caseload.programme
    response = await provider.get(
        "/v1/participants", params={"programme": programme, "no_contact_days": 25}
    )
    items = caseload.named(response.json()["items"])
    assert items["other-worker"]["no_recent_contact"] is True  # 25 days: "N days or more"
    assert items["seen-recently"]["no_recent_contact"] is False


async def test_only_flagged_lists_just_those_needing_contact(provider, caseload) -> None:
    programme = caseload.programme
    response = await provider.get(
        "/v1/participants",
        params={"programme": programme, "no_contact_days": 21, "only_flagged": "true"},
    )
    items = caseload.named(response.json()["items"])
    assert set(items) == {"missed-since", "never-seen", "other-worker"}
    assert all(i["no_recent_contact"] for i in items.values())


async def test_the_caseload_of_one_key_worker(provider, caseload) -> None:
    programme = caseload.programme
    response = await provider.get(
        "/v1/participants",
        params={"programme": programme, "key_worker": "kw-22", "no_contact_days": 21},
    )
    assert list(caseload.named(response.json()["items"])) == ["other-worker"]


async def test_the_plain_list_has_everyone_and_no_flags(provider, caseload) -> None:
    programme = caseload.programme
    response = await provider.get("/v1/participants", params={"programme": programme})
    items = caseload.named(response.json()["items"])
    assert len(items) == 6
    assert items["exited"]["status"] == "exited"
    assert {i["no_recent_contact"] for i in items.values()} == {None}
    exited = await provider.get(
        "/v1/participants", params={"programme": programme, "status": "exited"}
    )
    assert list(caseload.named(exited.json()["items"])) == ["exited"]


async def test_pages_follow_the_cursor_in_attachment_order(provider, caseload) -> None:
    programme = caseload.programme
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"programme": programme, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await provider.get("/v1/participants", params=params)).json()
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert len({i["id"] for i in seen}) == 6
    keys = [(i["attached_on"], i["id"]) for i in seen]
    assert keys == sorted(keys)


async def test_providers_see_only_their_own_participants(
    casework: Casework, provider, caseload, other_provider, office, referrer
) -> None:
    programme = caseload.programme
    some_id = caseload.id("new")
    provider_id = caseload.people["new"]["provider_id"]

    theirs = await other_provider.get("/v1/participants", params={"programme": programme})
    assert theirs.status_code == 200
    assert theirs.json()["items"] == []
    assert (await other_provider.get(f"/v1/participants/{some_id}")).status_code == 404
    spying = await other_provider.get(
        "/v1/participants", params={"programme": programme, "provider_id": provider_id}
    )
    assert spying.json()["items"] == []

    everyone = await office.get("/v1/participants", params={"programme": programme})
    assert len(everyone.json()["items"]) == 6
    # The office oversees casework without the person's details.
    assert {i["person"] for i in everyone.json()["items"]} == {None}
    one = await office.get("/v1/participants", params={"provider_id": provider_id, "limit": 500})
    assert {i["provider_id"] for i in one.json()["items"]} == {provider_id}
    fetched = await office.get(f"/v1/participants/{some_id}")
    assert fetched.status_code == 200
    assert fetched.json()["person"] is None

    mine = (await provider.get(f"/v1/participants/{some_id}")).json()
    assert mine["person"]["family_name"].startswith("Taylor")

    assert (await referrer.get("/v1/participants")).status_code == 403
    assert (await referrer.get(f"/v1/participants/{some_id}")).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"no_contact_days": -1}, "no_contact_days"),
        ({"no_contact_days": "x"}, "no_contact_days"),
        ({"only_flagged": "true"}, "only_flagged"),
        ({"status": "left"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"provider_id": "nope"}, "provider_id"),
        ({"key_worker": "kw\x00"}, "key_worker"),
        ({"programme": "p" * 201}, "programme"),
    ],
)
async def test_bad_queries_are_422(provider, params, field: str) -> None:
    response = await provider.get("/v1/participants", params=params)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_unknown_or_malformed_ids_are_404(provider) -> None:
    assert (await provider.get(f"/v1/participants/{uuid.uuid4()}")).status_code == 404
    assert (await provider.get("/v1/participants/123")).status_code == 404


async def test_key_workers_change_and_keep_a_history(
    casework: Casework, provider, provider_id
) -> None:
    participant = await casework.participant(
        provider, provider_id, attached_on=days_ago(30), referred_on=days_ago(31)
    )
    pid = participant["id"]
    url = f"/v1/participants/{pid}/key-worker"

    moved = await provider.post(
        url, json={"key_worker": "kw-40", "assigned_on": days_ago(10).isoformat()}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["key_worker"] == "kw-40"
    assert moved.json()["key_worker_history"] == [
        {"key_worker": "kw-17", "assigned_on": days_ago(30).isoformat()},
        {"key_worker": "kw-40", "assigned_on": days_ago(10).isoformat()},
    ]
    backdated = await provider.post(
        url, json={"key_worker": "kw-41", "assigned_on": days_ago(11).isoformat()}
    )
    assert backdated.status_code == 422
    assert backdated.json()["errors"][0]["field"] == "assigned_on"
    future = await provider.post(
        url, json={"key_worker": "kw-41", "assigned_on": days_ago(-1).isoformat()}
    )
    assert future.status_code == 422

    # The original attachment, retried after the handover, is still recognised.
    retry = await provider.post(
        "/v1/participants",
        json={
            "referral_id": participant["referral_id"],
            "attached_on": days_ago(30).isoformat(),
            "key_worker": "kw-17",
        },
    )
    assert retry.status_code == 200
    assert retry.json()["key_worker"] == "kw-40"

    listed = await provider.get(
        "/v1/participants", params={"programme": participant["programme"], "key_worker": "kw-40"}
    )
    assert [i["id"] for i in listed.json()["items"]] == [pid]

    await provider.post(
        f"/v1/participants/{pid}/exit",
        json={"left_on": days_ago(1).isoformat(), "reason": "completed"},
    )
    assert (await provider.post(url, json={"key_worker": "kw-50"})).status_code == 409


async def test_timestamps_in_the_list_carry_an_offset(provider, caseload) -> None:
    programme = caseload.programme
    items = (await provider.get("/v1/participants", params={"programme": programme})).json()
    for item in items["items"]:
        assert datetime.fromisoformat(item["created_at"]).tzinfo is not None
        if item["last_attended_at"]:
            assert datetime.fromisoformat(item["last_attended_at"]).utcoffset() == timedelta(0)
