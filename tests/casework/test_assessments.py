"""`POST /v1/participants/{id}/assessments` (contract §3): barrier assessments."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.casework.domain import BARRIER_KEYS
from services.casework.store.tables import assessments
from tests.casework.support import Casework, today
from tests.support.events import outbox_events


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "assessed_on": "2024-02-20",
        "kind": "initial",
        "barriers": {"mental_health": 5, "physical_health": 2, "confidence": 4},
        "wellbeing": 41,
    }
    values.update(overrides)
    return values


async def count(casework: Casework, participant_id: str) -> int:
    async with casework.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(func.count()).where(
                    assessments.c.participant_id == uuid.UUID(participant_id)
                )
            )
        ).scalar_one()


@pytest.fixture
async def participant(casework: Casework, provider, provider_id) -> dict[str, Any]:
    return await casework.participant(provider, provider_id)


async def test_an_initial_assessment_is_recorded_and_published(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    response = await provider.post(f"/v1/participants/{pid}/assessments", json=body())

    assert response.status_code == 201, response.text
    assessment = response.json()
    assert response.headers["location"] == f"/v1/participants/{pid}/assessments/{assessment['id']}"
    assert assessment["kind"] == "initial"
    assert assessment["assessed_on"] == "2024-02-20"
    # Only the barriers scored: one not sent is unknown, not 0.
    assert assessment["barriers"] == {"mental_health": 5, "physical_health": 2, "confidence": 4}
    assert assessment["wellbeing"] == 41
    assert assessment["severe_barriers"] == ["confidence", "mental_health"]

    fetched = await provider.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.json() == assessment

    published = [
        e
        for e in await outbox_events(casework.app.runtime, "casework.assessment.recorded")
        if e.payload["participant_id"] == pid
    ]
    assert len(published) == 1
    assert published[0].payload == {
        "assessment_id": assessment["id"],
        "participant_id": pid,
        "programme": participant["programme"],
        "provider_id": participant["provider_id"],
        "kind": "initial",
        "assessed_on": "2024-02-20",
        "barriers": {"mental_health": 5, "physical_health": 2, "confidence": 4},
        "wellbeing": 41,
    }


async def test_every_barrier_key_of_the_contract_is_accepted(provider, participant) -> None:
    scores = {key: i % 7 for i, key in enumerate(BARRIER_KEYS)}
    response = await provider.post(
        f"/v1/participants/{participant['id']}/assessments",
        json=body(barriers=scores, wellbeing=None),
    )
    assert response.status_code == 201, response.text
    assert response.json()["barriers"] == scores
    assert response.json()["wellbeing"] is None


async def test_reviews_and_exits_may_repeat_but_only_one_initial(
    casework: Casework, provider, participant
) -> None:
    url = f"/v1/participants/{participant['id']}/assessments"
    assert (await provider.post(url, json=body())).status_code == 201
    second = await provider.post(url, json=body(assessed_on="2024-03-01"))
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    for kind, day in [("review", "2024-08-20"), ("review", "2024-09-20"), ("exit", "2024-10-01")]:
        response = await provider.post(url, json=body(kind=kind, assessed_on=day))
        assert response.status_code == 201
    listed = (await provider.get(url)).json()["items"]
    assert [a["kind"] for a in listed] == ["initial", "review", "review", "exit"]
    assert await count(casework, participant["id"]) == 4


async def test_simultaneous_initial_assessments_store_one(
    casework: Casework, provider, participant
) -> None:
    url = f"/v1/participants/{participant['id']}/assessments"
    responses = await asyncio.gather(*(provider.post(url, json=body()) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await count(casework, participant["id"]) == 1


async def test_initial_assessments_keep_working_once_statements_are_planned_generically(
    casework: Casework, provider, provider_id
) -> None:
    """PostgreSQL re-plans a prepared statement generically after five executions on a
    connection; the one-initial guard must still find its partial unique index then."""
    participants = [await casework.participant(provider, provider_id) for _ in range(30)]
    for participant in participants:
        url = f"/v1/participants/{participant['id']}/assessments"
        response = await provider.post(url, json=body())
        assert response.status_code == 201, response.text
        assert (await provider.post(url, json=body())).status_code == 409


@pytest.mark.parametrize(
    ("barriers", "field"),
    [
        ({"mental_health": 7}, "barriers.mental_health"),
        ({"mental_health": -1}, "barriers.mental_health"),
        ({"mental_health": 4.0}, "barriers.mental_health"),
        ({"mental_health": True}, "barriers.mental_health"),
        ({"mental_health": "4"}, "barriers.mental_health"),
        ({"mental_health": None}, "barriers.mental_health"),
        ({"mental_health": 3, "loneliness": 5}, "barriers.loneliness"),
        ({"Mental_Health": 3}, "barriers.Mental_Health"),
        ({}, "barriers"),
        ([5, 4], "barriers"),
        ("mental_health=5", "barriers"),
    ],
)
async def test_barrier_errors_name_the_barrier(
    casework: Casework, provider, participant, barriers, field: str
) -> None:
    response = await provider.post(
        f"/v1/participants/{participant['id']}/assessments", json=body(barriers=barriers)
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await count(casework, participant["id"]) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"wellbeing": 13}, "wellbeing"),
        ({"wellbeing": 71}, "wellbeing"),
        ({"wellbeing": 40.5}, "wellbeing"),
        ({"wellbeing": "41"}, "wellbeing"),
        ({"kind": "intermediate"}, "kind"),
        ({"kind": None}, "kind"),
        ({"assessed_on": "2024-13-01"}, "assessed_on"),
        ({"assessed_on": "2024-02-19"}, "assessed_on"),  # before attached_on
        ({"assessed_on": None}, "assessed_on"),
        ({"score": 3}, "score"),
    ],
)
async def test_other_field_errors(
    casework: Casework, provider, participant, change, field: str
) -> None:
    response = await provider.post(
        f"/v1/participants/{participant['id']}/assessments", json=body(**change)
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await count(casework, participant["id"]) == 0


async def test_wellbeing_bounds_are_inclusive(provider, participant) -> None:
    url = f"/v1/participants/{participant['id']}/assessments"
    assert (await provider.post(url, json=body(wellbeing=14))).status_code == 201
    assert (await provider.post(url, json=body(kind="review", wellbeing=70))).status_code == 201


async def test_an_assessment_cannot_be_in_the_future_or_after_exit(
    casework: Casework, provider, participant
) -> None:
    pid = participant["id"]
    url = f"/v1/participants/{pid}/assessments"
    tomorrow = (today() + timedelta(days=1)).isoformat()
    assert (await provider.post(url, json=body(assessed_on=tomorrow))).status_code == 422
    await provider.post(
        f"/v1/participants/{pid}/exit", json={"left_on": "2024-06-30", "reason": "left_early"}
    )
    late = await provider.post(url, json=body(kind="exit", assessed_on="2024-07-01"))
    assert late.status_code == 422
    assert late.json()["errors"][0]["field"] == "assessed_on"
    # Recorded late, dated while still on the programme: fine.
    on_exit_day = await provider.post(url, json=body(kind="exit", assessed_on="2024-06-30"))
    assert on_exit_day.status_code == 201


async def test_assessments_belong_to_the_participants_provider(
    casework: Casework, provider, participant, other_provider, office, referrer
) -> None:
    url = f"/v1/participants/{participant['id']}/assessments"
    assert (await other_provider.post(url, json=body())).status_code == 404
    assert (await other_provider.get(url)).status_code == 404
    assert (await office.post(url, json=body())).status_code == 403
    assert (await referrer.post(url, json=body())).status_code == 403
    assert (
        await provider.post(f"/v1/participants/{uuid.uuid4()}/assessments", json=body())
    ).status_code == 404
    assert await count(casework, participant["id"]) == 0
    assert (await provider.post(url, json=body())).status_code == 201
    assert len((await office.get(url)).json()["items"]) == 1
    missing = await provider.get(f"{url}/{uuid.uuid4()}")
    assert missing.status_code == 404
