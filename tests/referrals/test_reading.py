"""Reading referrals: visibility between partners, filters, keyset pagination and
updated_since (contract §1, §2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.referrals.helpers import Partner, Programme
from tests.support.builders import referral_body


async def post(partner: Partner, programme: Programme, **changes: Any) -> dict:
    response = await partner.refer(referral_body(programme.code, **changes))
    assert response.status_code == 201, response.text
    return response.json()


async def listed(partner: Partner, **params: Any) -> list[dict]:
    """Every item of the caller's list, following next_cursor."""
    items: list[dict] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await partner.get("/v1/referrals", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def ids(items: list[dict]) -> list[str]:
    return [item["id"] for item in items]


# --- visibility -------------------------------------------------------------------------------


async def test_a_referrer_sees_only_what_it_made(
    jcp: Partner, probation: Partner, programme: Programme
) -> None:
    mine = await post(jcp, programme)
    theirs = await post(probation, programme)

    assert (await jcp.get(f"/v1/referrals/{mine['id']}")).status_code == 200
    hidden = await jcp.get(f"/v1/referrals/{theirs['id']}")
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert ids(await listed(jcp)) == [mine["id"]]
    assert ids(await listed(probation)) == [theirs["id"]]


async def test_a_provider_sees_what_is_routed_to_it_and_its_self_referrals(
    jcp: Partner, provider: Partner, other_provider: Partner, programme: Programme
) -> None:
    routed = await post(jcp, programme)  # Wigan: provider
    elsewhere = await post(jcp, programme, person={"local_authority": "Manchester"})
    rejected = await post(jcp, programme, circumstances={"benefit": "PIP"})
    self_made = await post(provider, programme, person={"local_authority": "Manchester"})

    visible = set(ids(await listed(provider, programme=programme.code)))
    assert visible == {routed["id"], self_made["id"]}
    for hidden in (elsewhere, rejected):
        assert (await provider.get(f"/v1/referrals/{hidden['id']}")).status_code == 404
    assert set(ids(await listed(other_provider, programme=programme.code))) == {
        elsewhere["id"],
        self_made["id"],
    }


async def test_the_programme_office_sees_everything(
    jcp: Partner, probation: Partner, office: Partner, programme: Programme
) -> None:
    made = [
        await post(jcp, programme),
        await post(probation, programme, circumstances={"benefit": "PIP"}),
    ]
    visible = ids(await listed(office, programme=programme.code))
    assert set(visible) >= {m["id"] for m in made}
    for m in made:
        assert (await office.get(f"/v1/referrals/{m['id']}")).status_code == 200


async def test_an_unknown_referral_is_404(jcp: Partner) -> None:
    assert (await jcp.get(f"/v1/referrals/{uuid.uuid4()}")).status_code == 404
    # An id that is not even a UUID names nothing either (§1): 404, not a 422.
    malformed = await jcp.get("/v1/referrals/not-a-uuid")
    assert malformed.status_code == 404
    assert malformed.headers["content-type"] == "application/problem+json"


# --- lists ------------------------------------------------------------------------------------


async def test_pages_follow_the_cursor_most_recently_received_first(
    jcp: Partner, programme: Programme
) -> None:
    made = [await post(jcp, programme) for _ in range(7)]

    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await jcp.get("/v1/referrals", params=params)).json()
        pages.append(ids(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [m["id"] for m in reversed(made)]


async def test_a_full_last_page_has_no_next_cursor(jcp: Partner, programme: Programme) -> None:
    for _ in range(4):
        await post(jcp, programme)
    first = (await jcp.get("/v1/referrals", params={"limit": 2})).json()
    second = (
        await jcp.get("/v1/referrals", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


async def test_limit_defaults_to_50(jcp: Partner, programme: Programme) -> None:
    for _ in range(51):
        await post(jcp, programme)
    page = (await jcp.get("/v1/referrals")).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None
    rest = (await jcp.get("/v1/referrals", params={"cursor": page["next_cursor"]})).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None


async def test_limit_500_is_allowed(jcp: Partner) -> None:
    response = await jcp.get("/v1/referrals", params={"limit": 500})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # a base64 JSON list of the wrong shape
        ({"status": "pending"}, "status"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "2024-02-03T10:00:00"}, "updated_since"),  # no offset
        ({"programme": ""}, "programme"),
    ],
)
async def test_bad_list_parameters_are_422(jcp: Partner, params: dict, field: str) -> None:
    response = await jcp.get("/v1/referrals", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_filter_by_status_and_programme(sandbox, jcp: Partner, programme: Programme) -> None:
    from tests.referrals.helpers import define_programme

    accepted = await post(jcp, programme)
    rejected = await post(jcp, programme, circumstances={"benefit": "PIP"})
    other_code = await define_programme(sandbox, jcp.app, {programme.provider: ["Wigan"]})
    other = (await jcp.refer(referral_body(other_code))).json()

    assert ids(await listed(jcp, status="rejected")) == [rejected["id"]]
    assert ids(await listed(jcp, status="accepted", programme=programme.code)) == [accepted["id"]]
    assert ids(await listed(jcp, programme=other_code)) == [other["id"]]
    assert await listed(jcp, status="attached") == []


async def test_updated_since_returns_referrals_whose_status_changed_since(
    jcp: Partner, programme: Programme
) -> None:
    quiet = await post(jcp, programme)
    moved = await post(jcp, programme)
    checkpoint = datetime.now(UTC).isoformat()
    withdrawn = (
        await jcp.post(f"/v1/referrals/{moved['id']}/withdraw", json={"reason": "duplicate form"})
    ).json()
    fresh = await post(jcp, programme)

    changed = await listed(jcp, updated_since=checkpoint)
    assert ids(changed) == [fresh["id"], moved["id"]]
    assert changed[1]["status"] == "withdrawn"
    assert datetime.fromisoformat(withdrawn["updated_at"]) >= datetime.fromisoformat(checkpoint)
    # The filter is inclusive: polling from the last updated_at seen lists it again.
    assert moved["id"] in ids(await listed(jcp, updated_since=withdrawn["updated_at"]))
    assert quiet["id"] in ids(await listed(jcp, updated_since="2000-01-01T00:00:00+01:00"))


async def test_cursor_pages_combine_with_filters(jcp: Partner, programme: Programme) -> None:
    made = [await post(jcp, programme, circumstances={"benefit": "PIP"}) for _ in range(5)]
    await post(jcp, programme)  # accepted: filtered out
    items = await listed(jcp, status="rejected", limit=2)
    assert ids(items) == [m["id"] for m in reversed(made)]


async def test_a_providers_pages_merge_routed_and_self_made_referrals(
    jcp: Partner, provider: Partner, programme: Programme
) -> None:
    made = [
        await post(jcp, programme),  # routed to the provider
        await post(provider, programme),  # self-made and routed to itself: listed once
        await post(provider, programme, person={"local_authority": "Manchester"}),  # self-made
        await post(jcp, programme),
        await post(provider, programme, circumstances={"benefit": "PIP"}),  # self-made, rejected
    ]
    items = await listed(provider, programme=programme.code, limit=2)
    assert ids(items) == [m["id"] for m in reversed(made)]
    rejected = await listed(provider, programme=programme.code, status="rejected", limit=1)
    assert ids(rejected) == [made[4]["id"]]
