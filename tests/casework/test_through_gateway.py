"""Casework as partners reach it: every service a process behind the real gateway
(as `make run` starts them), partners with real API keys."""

from __future__ import annotations

import json

import pytest

from tests.support.builders import referral_body
from tests.support.events import eventually
from tests.support.gateway import Gateway
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform


def sessions(participant_id: str, count: int, prefix: str = "gw") -> dict:
    return {
        "sessions": [
            {
                "external_id": f"{prefix}-{i}",
                "participant_id": participant_id,
                "occurred_at": "2024-03-01T10:00:00+00:00",
                "kind": "one_to_one",
                "duration_minutes": 45,
                "attendance": "attended",
                "modified_at": "2024-03-01T12:00:00+00:00",
            }
            for i in range(count)
        ]
    }


async def test_a_provider_attaches_and_syncs_through_the_gateway(
    platform: RunningPlatform,
) -> None:
    gateway = Gateway(platform.gateway_url, platform.admin_token)
    try:
        provider = await gateway.create_partner("provider")
        other = await gateway.create_partner("provider")
        jcp = await gateway.create_partner("jcp")
        office = await gateway.create_partner("programme_office")
        programme = await gateway.define_programme({provider: ["Wigan"], other: ["Bolton"]})
        async with (
            jcp.client() as referrer,
            provider.client() as mine,
            other.client() as theirs,
            office.client() as overseer,
        ):
            posted = await referrer.post("/v1/referrals", json=referral_body(programme["code"]))
            assert posted.status_code == 201, posted.text
            referral_id = posted.json()["id"]

            async def accepted() -> None:
                seen = await mine.get(f"/v1/referrals/{referral_id}")
                assert seen.status_code == 200 and seen.json()["status"] == "accepted"

            await eventually(accepted, timeout=30)
            attached = await mine.post(
                "/v1/participants",
                json={"referral_id": referral_id, "attached_on": "2024-02-20", "key_worker": "kw"},
            )
            assert attached.status_code == 201, attached.text
            assert attached.headers["location"] == f"/v1/participants/{attached.json()['id']}"
            pid = attached.json()["id"]

            synced = await mine.post("/v1/sessions/bulk", json=sessions(pid, 1000))
            assert synced.status_code == 200, synced.text
            assert {r["status"] for r in synced.json()["results"]} == {"created"}
            # The largest sync the contract allows fits both the gateway's and casework's
            # caps: 1,000 items, each with 10,000 characters of notes from outside the
            # BMP, written the way Python's json.dumps writes them by default (a surrogate
            # pair of escapes, twelve bytes: "\\ud83d\\ude00").
            longest = sessions(pid, 1000, "long")
            for item in longest["sessions"]:
                item["notes"] = "\U0001f600" * 10_000
            content = json.dumps(longest).encode()
            assert len(content) > 120_000_000
            synced = await mine.post(
                "/v1/sessions/bulk",
                content=content,
                headers={"content-type": "application/json"},
                timeout=120,
            )
            assert synced.status_code == 200, synced.text[:500]
            assert {r["status"] for r in synced.json()["results"]} == {"created"}
            too_many = await mine.post("/v1/sessions/bulk", json=sessions(pid, 1001, "x"))
            assert too_many.status_code == 413
            assert too_many.headers["content-type"] == "application/problem+json"

            assert (await theirs.get(f"/v1/participants/{pid}")).status_code == 404
            assert (await referrer.get(f"/v1/participants/{pid}")).status_code == 403
            listed = await overseer.get(f"/v1/participants/{pid}/sessions")
            assert listed.status_code == 200 and len(listed.json()["items"]) == 2000

            async def marked_attached() -> None:
                seen = await referrer.get(f"/v1/referrals/{referral_id}")
                assert seen.json()["status"] == "attached"

            await eventually(marked_attached, timeout=30)
    finally:
        await gateway.aclose()
