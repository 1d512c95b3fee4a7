"""Employment episodes and exit (contract §3)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from services.casework.store.tables import employment_episodes
from shared.events.outcomes import ParticipantFactsRequested
from tests.casework.support import Casework, today
from tests.support.builders import employment_body
from tests.support.events import eventually, outbox_events, publish


def job(**overrides: Any) -> dict[str, Any]:
    return employment_body(**{"employer": "Wigan Warehousing Ltd", **overrides})


async def events_of(casework: Casework, event_type: str, participant_id: str) -> list[dict]:
    return [
        e.payload
        for e in await outbox_events(casework.app.runtime, event_type)
        if e.payload["participant_id"] == participant_id
    ]


async def episode_count(casework: Casework, participant_id: str) -> int:
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count()).where(
                    employment_episodes.c.participant_id == uuid.UUID(participant_id)
                )
            )
        ).scalar_one()


@pytest.fixture
async def participant(casework: Casework, provider, provider_id) -> dict[str, Any]:
    return await casework.participant(provider, provider_id)


# --- employment ----------------------------------------------------------------------


async def test_a_job_start_is_recorded_listed_and_published(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    response = await provider.post(f"/v1/participants/{pid}/employment", json=job())

    assert response.status_code == 201, response.text
    episode = response.json()
    assert response.headers["location"] == f"/v1/participants/{pid}/employment/{episode['id']}"
    assert episode == {
        "id": episode["id"],
        "employer": "Wigan Warehousing Ltd",
        "started_on": "2024-05-01",
        "ended_on": None,
        "hours_per_week": 20,
        "weekly_earnings_pence": 24000,
        "self_employed": False,
    }
    assert (await provider.get(response.headers["location"])).json() == episode
    assert (await provider.get(f"/v1/participants/{pid}")).json()["employment"] == [episode]
    assert await events_of(casework, "casework.employment.started", pid) == [
        {
            "episode_id": episode["id"],
            "participant_id": pid,
            "programme": participant["programme"],
            "provider_id": participant["provider_id"],
            "started_on": "2024-05-01",
            "ended_on": None,
            "hours_per_week": 20.0,
            "self_employed": False,
        }
    ]


async def test_overlapping_and_gapped_episodes_are_allowed(provider, participant) -> None:
    pid = participant["id"]
    url = f"/v1/participants/{pid}/employment"
    first = (await provider.post(url, json=job(started_on="2024-05-01"))).json()
    await provider.post(f"{url}/{first['id']}/end", json={"ended_on": "2024-06-30"})
    overlapping = await provider.post(
        url, json=job(employer="Evening bar", started_on="2024-06-01", hours_per_week=8.5)
    )
    after_gap = await provider.post(
        url, json=job(employer="Own business", started_on="2024-09-01", self_employed=True)
    )
    assert overlapping.status_code == after_gap.status_code == 201
    assert overlapping.json()["hours_per_week"] == 8.5
    assert after_gap.json()["self_employed"] is True
    listed = (await provider.get(f"/v1/participants/{pid}")).json()["employment"]
    assert [e["started_on"] for e in listed] == ["2024-05-01", "2024-06-01", "2024-09-01"]
    assert [e["ended_on"] for e in listed] == ["2024-06-30", None, None]


async def test_ending_an_episode_publishes_its_whole_state_once(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    episode = (await provider.post(f"/v1/participants/{pid}/employment", json=job())).json()
    end_url = f"/v1/participants/{pid}/employment/{episode['id']}/end"

    ended = await provider.post(end_url, json={"ended_on": "2024-07-31"})
    assert ended.status_code == 200
    assert ended.json() == {**episode, "ended_on": "2024-07-31"}

    again = await provider.post(end_url, json={"ended_on": "2024-07-31"})
    assert again.status_code == 200  # a retry
    assert again.json() == ended.json()
    different = await provider.post(end_url, json={"ended_on": "2024-08-01"})
    assert different.status_code == 409

    assert await events_of(casework, "casework.employment.ended", pid) == [
        {
            "episode_id": episode["id"],
            "participant_id": pid,
            "programme": participant["programme"],
            "provider_id": participant["provider_id"],
            "started_on": "2024-05-01",
            "ended_on": "2024-07-31",
            "hours_per_week": 20.0,
            "self_employed": False,
        }
    ]


async def test_outcomes_asking_for_a_participants_employment_gets_it_as_it_stands(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    url = f"/v1/participants/{pid}/employment"
    first = (await provider.post(url, json=job(started_on="2024-05-01"))).json()
    await provider.post(f"{url}/{first['id']}/end", json={"ended_on": "2024-06-25"})
    second = (await provider.post(url, json=job(started_on="2024-09-03", hours_per_week=12))).json()
    asked, stranger = uuid.uuid4(), uuid.uuid4()
    await publish(
        casework.sandbox,
        ParticipantFactsRequested(request_id=asked, participant_id=uuid.UUID(pid)),
        ParticipantFactsRequested(request_id=uuid.uuid4(), participant_id=stranger),
        producer="outcomes",
    )

    async def answered() -> list[dict]:
        answers = await outbox_events(casework.app.runtime, "casework.participant.facts_confirmed")
        mine = [e.payload for e in answers if e.payload["participant_id"] in (pid, str(stranger))]
        assert len(mine) == 2, "not answered yet"
        return mine

    answer, unknown = sorted(await eventually(answered), key=lambda a: a["participant_id"] != pid)
    assert answer == {
        "request_id": str(asked),
        "participant_id": pid,
        "known": True,
        "programme": participant["programme"],
        "provider_id": participant["provider_id"],
        "episodes": [
            {
                "episode_id": first["id"],
                "started_on": "2024-05-01",
                "ended_on": "2024-06-25",
                "hours_per_week": 20.0,
                "self_employed": False,
            },
            {
                "episode_id": second["id"],
                "started_on": "2024-09-03",
                "ended_on": None,
                "hours_per_week": 12.0,
                "self_employed": False,
            },
        ],
    }
    # A participant casework never had: said so, nothing else (no employer, no earnings).
    assert unknown["known"] is False
    assert (unknown["programme"], unknown["provider_id"], unknown["episodes"]) == (None, None, [])


async def test_a_job_already_over_is_recorded_in_one_call(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    response = await provider.post(
        f"/v1/participants/{pid}/employment", json=job(ended_on="2024-05-31")
    )
    assert response.status_code == 201
    assert response.json()["ended_on"] == "2024-05-31"
    assert [
        e["ended_on"] for e in await events_of(casework, "casework.employment.started", pid)
    ] == ["2024-05-31"]
    assert len(await events_of(casework, "casework.employment.ended", pid)) == 1


async def test_an_episode_may_end_on_its_first_day(provider, participant) -> None:
    pid = participant["id"]
    episode = (await provider.post(f"/v1/participants/{pid}/employment", json=job())).json()
    response = await provider.post(
        f"/v1/participants/{pid}/employment/{episode['id']}/end", json={"ended_on": "2024-05-01"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hours_per_week": 0}, "hours_per_week"),
        ({"hours_per_week": -5}, "hours_per_week"),
        ({"hours_per_week": 169}, "hours_per_week"),
        ({"hours_per_week": "20"}, "hours_per_week"),
        ({"hours_per_week": True}, "hours_per_week"),
        ({"hours_per_week": 0.001}, "hours_per_week"),
        ({"weekly_earnings_pence": -1}, "weekly_earnings_pence"),
        ({"weekly_earnings_pence": 240.5}, "weekly_earnings_pence"),
        ({"weekly_earnings_pence": "24000"}, "weekly_earnings_pence"),
        ({"self_employed": "no"}, "self_employed"),
        ({"self_employed": 0}, "self_employed"),
        ({"employer": ""}, "employer"),
        ({"employer": None}, "employer"),
        ({"employer": "Acme\u0000"}, "employer"),
        ({"started_on": "2024-02-02"}, "started_on"),  # before referred_on
        ({"started_on": "yesterday"}, "started_on"),
        ({"ended_on": "2024-04-30"}, "ended_on"),  # before started_on
        ({"salary": 1}, "salary"),
    ],
)
async def test_employment_field_errors(
    casework: Casework, provider, participant, change, field: str
) -> None:
    response = await provider.post(
        f"/v1/participants/{participant['id']}/employment", json=job(**change)
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await episode_count(casework, participant["id"]) == 0


async def test_employment_dates_cannot_be_in_the_future(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    tomorrow = (today() + timedelta(days=1)).isoformat()
    url = f"/v1/participants/{pid}/employment"
    assert (await provider.post(url, json=job(started_on=tomorrow))).status_code == 422
    assert (await provider.post(url, json=job(ended_on=tomorrow))).status_code == 422
    episode = (await provider.post(url, json=job())).json()
    end = await provider.post(f"{url}/{episode['id']}/end", json={"ended_on": tomorrow})
    assert end.status_code == 422
    before = await provider.post(f"{url}/{episode['id']}/end", json={"ended_on": "2024-04-30"})
    assert before.status_code == 422
    assert before.json()["errors"][0]["field"] == "ended_on"


async def test_employment_earnings_may_be_left_out(provider, participant) -> None:
    response = await provider.post(
        f"/v1/participants/{participant['id']}/employment",
        json={"employer": "Cafe", "started_on": "2024-05-01", "hours_per_week": 16},
    )
    assert response.status_code == 201
    assert response.json()["weekly_earnings_pence"] is None
    assert response.json()["self_employed"] is False


async def test_episodes_belong_to_their_participant(
    casework: Casework, provider, provider_id, participant, other_provider, office
) -> None:
    pid = participant["id"]
    episode = (await provider.post(f"/v1/participants/{pid}/employment", json=job())).json()
    sibling = (await casework.participant(provider, provider_id))["id"]

    wrong_participant = await provider.post(
        f"/v1/participants/{sibling}/employment/{episode['id']}/end",
        json={"ended_on": "2024-06-01"},
    )
    assert wrong_participant.status_code == 404
    unknown = await provider.post(
        f"/v1/participants/{pid}/employment/{uuid.uuid4()}/end", json={"ended_on": "2024-06-01"}
    )
    assert unknown.status_code == 404
    foreign = await other_provider.post(
        f"/v1/participants/{pid}/employment/{episode['id']}/end", json={"ended_on": "2024-06-01"}
    )
    assert foreign.status_code == 404
    assert (
        await other_provider.post(f"/v1/participants/{pid}/employment", json=job())
    ).status_code == 404
    assert (await office.post(f"/v1/participants/{pid}/employment", json=job())).status_code == 403
    assert (
        await office.get(f"/v1/participants/{pid}/employment/{episode['id']}")
    ).status_code == 200
    assert await episode_count(casework, pid) == 1


# --- exit ----------------------------------------------------------------------------


async def test_exit_ends_active_status_and_is_published(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    response = await provider.post(
        f"/v1/participants/{pid}/exit", json={"left_on": "2024-09-30", "reason": "moved_away"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "exited"
    assert body["left_on"] == "2024-09-30"
    assert body["exit_reason"] == "moved_away"
    assert body["id"] == pid
    assert await events_of(casework, "casework.participant.exited", pid) == [
        {
            "participant_id": pid,
            "programme": participant["programme"],
            "provider_id": participant["provider_id"],
            "left_on": "2024-09-30",
            "reason": "moved_away",
        }
    ]


async def test_exit_twice_is_a_retry_or_a_conflict(
    casework: Casework, provider, participant
) -> None:
    url = f"/v1/participants/{participant['id']}/exit"
    exit_body = {"left_on": "2024-09-30", "reason": "completed"}
    assert (await provider.post(url, json=exit_body)).status_code == 200
    again = await provider.post(url, json=exit_body)
    assert again.status_code == 200
    assert again.json()["left_on"] == "2024-09-30"
    assert (await provider.post(url, json={**exit_body, "reason": "other"})).status_code == 409
    assert (
        await provider.post(url, json={**exit_body, "left_on": "2024-10-01"})
    ).status_code == 409
    assert len(await events_of(casework, "casework.participant.exited", participant["id"])) == 1


@pytest.mark.parametrize(
    ("exit_body", "field"),
    [
        ({"left_on": "2024-02-19", "reason": "completed"}, "left_on"),  # before attached_on
        ({"left_on": "2024-09-30", "reason": "bored"}, "reason"),
        ({"left_on": "2024-09-30"}, "reason"),
        ({"reason": "completed"}, "left_on"),
        ({"left_on": "30/09/2024", "reason": "completed"}, "left_on"),
    ],
)
async def test_exit_field_errors(
    casework: Casework, provider, participant, exit_body, field: str
) -> None:
    pid = participant["id"]
    response = await provider.post(f"/v1/participants/{pid}/exit", json=exit_body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await provider.get(f"/v1/participants/{pid}")).json()["status"] == "active"


async def test_exit_cannot_be_in_the_future(provider, participant) -> None:
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = await provider.post(
        f"/v1/participants/{participant['id']}/exit",
        json={"left_on": tomorrow, "reason": "completed"},
    )
    assert response.status_code == 422


async def test_exit_on_the_attachment_day_is_allowed(provider, participant) -> None:
    response = await provider.post(
        f"/v1/participants/{participant['id']}/exit",
        json={"left_on": participant["attached_on"], "reason": "left_early"},
    )
    assert response.status_code == 200


async def test_after_exit_jobs_can_still_end_but_not_start_later(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    url = f"/v1/participants/{pid}/employment"
    episode = (await provider.post(url, json=job(started_on="2024-05-01"))).json()
    await provider.post(
        f"/v1/participants/{pid}/exit", json={"left_on": "2024-06-30", "reason": "completed"}
    )
    # In-work support: the job goes on after the programme and ends later.
    ended = await provider.post(f"{url}/{episode['id']}/end", json={"ended_on": "2024-12-31"})
    assert ended.status_code == 200
    late_start = await provider.post(url, json=job(started_on="2024-07-01"))
    assert late_start.status_code == 422
    assert late_start.json()["errors"][0]["field"] == "started_on"
    recorded_late = await provider.post(url, json=job(started_on="2024-06-15"))
    assert recorded_late.status_code == 201


async def test_only_the_participants_provider_records_an_exit(
    provider, participant, other_provider, office, referrer
) -> None:
    url = f"/v1/participants/{participant['id']}/exit"
    exit_body = {"left_on": "2024-09-30", "reason": "completed"}
    assert (await other_provider.post(url, json=exit_body)).status_code == 404
    assert (await office.post(url, json=exit_body)).status_code == 403
    assert (await referrer.post(url, json=exit_body)).status_code == 403
    status = (await provider.get(f"/v1/participants/{participant['id']}")).json()["status"]
    assert status == "active"


async def lock_waiters(casework: Casework) -> int:
    """Backends of this database waiting for a row lock."""
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        ).scalar_one()


async def test_outcomes_asking_while_an_episode_ends_hears_of_the_end(
    casework: Casework, provider, participant
) -> None:
    """An answer read while the end was uncommitted would say the job still runs, and
    outcomes keeps the later of the two (the answer): a sustained claim would be paid
    for weeks not worked. Ending an episode takes the participant's lock, as the answer
    does, so the answer waits for the end."""
    pid = participant["id"]
    url = f"/v1/participants/{pid}/employment"
    episode = (await provider.post(url, json=job(started_on="2024-05-01"))).json()
    asked = uuid.uuid4()
    async with casework.app.runtime.engine.connect() as holder:
        # Hold the episode so the end stops midway through its transaction.
        await holder.execute(
            select(employment_episodes.c.id)
            .where(employment_episodes.c.id == uuid.UUID(episode["id"]))
            .with_for_update()
        )
        ending = asyncio.create_task(
            provider.post(f"{url}/{episode['id']}/end", json={"ended_on": "2024-06-25"})
        )

        async def end_waits() -> None:
            assert await lock_waiters(casework) == 1, "the end is not waiting yet"

        await eventually(end_waits)
        await publish(
            casework.sandbox,
            ParticipantFactsRequested(request_id=asked, participant_id=uuid.UUID(pid)),
            producer="outcomes",
        )

        async def answered_or_waiting() -> None:
            answers = await events_of(casework, "casework.participant.facts_confirmed", pid)
            assert answers or await lock_waiters(casework) == 2, "the answer is not in yet"

        await eventually(answered_or_waiting)
        await holder.rollback()
    assert (await ending).status_code == 200

    async def answer() -> dict:
        answers = await events_of(casework, "casework.participant.facts_confirmed", pid)
        assert answers, "not answered yet"
        return answers[0]

    assert [e["ended_on"] for e in (await eventually(answer))["episodes"]] == ["2024-06-25"]
