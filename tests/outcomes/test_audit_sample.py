"""The programme office's audit sample: a reproducible random draw of a period's
validated claims for manual evidence checks."""

from __future__ import annotations

import asyncio
import math
import uuid
from fractions import Fraction

import pytest

from services.outcomes import domain
from tests.outcomes.world import SELF_DECLARED, World
from tests.support.apps import TEST_POOL_SIZE

pytestmark = pytest.mark.asyncio


async def _sample(world: World, **params) -> dict:
    response = await world.office_client.get(
        "/v1/outcome-claims/audit-sample",
        params={"programme": world.programme, "period": "2024-05", **params},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_same_call_returns_the_same_sample(world: World) -> None:
    validated = []
    for day in range(1, 13):
        participant = await world.attach()
        claim = await world.claim(participant, "qualification", f"2024-05-{day:02d}")
        validated.append(claim["id"])
        if day % 3 == 0:  # not in the population: rejected, in review, another month
            await world.claim(participant, "education_start", "2024-05-20", evidence=[])
            await world.claim(
                participant, "volunteering_start", "2024-05-20", evidence=SELF_DECLARED
            )
            await world.claim(participant, "education_start", "2024-06-01")

    first = await _sample(world, rate=0.25)
    again = await _sample(world, rate=0.25)
    assert first == again
    assert first["population"] == 12
    assert first["sample_size"] == 3 == len(first["items"])
    ids = [item["id"] for item in first["items"]]
    assert set(ids) <= set(validated)
    assert all(item["status"] == "validated" for item in first["items"])
    # The draw is the documented one, so anybody can re-run it.
    expected = domain.audit_sample(
        world.programme, "2024-05", [uuid.UUID(i) for i in validated], Fraction(1, 4)
    )
    assert ids == [str(i) for i in expected]
    assert "sha256" in first["method"].lower().replace("-", "")

    default = await _sample(world)
    assert default["rate"] == 0.1
    assert default["sample_size"] == math.ceil(0.1 * 12) == 2
    assert [i["id"] for i in default["items"]] == ids[:2]  # a smaller rate draws a prefix
    everything = await _sample(world, rate=1)
    assert sorted(i["id"] for i in everything["items"]) == sorted(validated)
    empty = await _sample(world, period="2023-05")
    assert (empty["population"], empty["items"]) == (0, [])


@pytest.mark.parametrize(
    "params, field",
    [
        ({"rate": 0}, "rate"),
        ({"rate": -0.1}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": "a tenth"}, "rate"),
        ({"rate": "nan"}, "rate"),
        ({"period": "2024-5"}, "period"),
        ({"period": None}, "period"),
        ({"programme": None}, "programme"),
    ],
)
async def test_bad_parameters_are_422(world: World, params, field) -> None:
    query = {"programme": world.programme, "period": "2024-05", **params}
    query = {k: v for k, v in query.items() if v is not None}
    response = await world.office_client.get("/v1/outcome-claims/audit-sample", params=query)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_only_the_programme_office_draws_samples(world: World) -> None:
    params = {"programme": world.programme, "period": "2024-05"}
    for client in (world.provider_client, world.client(uuid.uuid4(), "jcp")):
        response = await client.get("/v1/outcome-claims/audit-sample", params=params)
        assert response.status_code == 403


async def test_calls_waiting_for_their_programme_do_not_starve_the_consumer(
    world: World,
) -> None:
    """More calls waiting (§8) for a programme than the pool has connections: each
    must hand its connection back between looks, or the consumer storing the
    definition they wait for gets none, and every one of them ends in a 422."""
    world.programme = f"prog-{uuid.uuid4().hex[:8]}"  # not defined yet
    calls = 2 * TEST_POOL_SIZE + 4  # the pool and its overflow (as many again), and more
    sampling = [
        asyncio.create_task(
            world.office_client.get(
                "/v1/outcome-claims/audit-sample",
                params={"programme": world.programme, "period": "2024-05"},
            )
        )
        for _ in range(calls)
    ]
    await asyncio.sleep(0.3)  # let every call start waiting
    await world.define_programme(wait=False)
    responses = await asyncio.gather(*sampling)
    assert [r.status_code for r in responses] == [200] * calls, responses[-1].text
    assert {r.json()["population"] for r in responses} == {0}
