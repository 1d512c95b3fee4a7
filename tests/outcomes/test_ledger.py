"""The append-only ledger and payment statements (contract §5)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from services.outcomes import store
from tests.outcomes.world import TARIFF, World
from tests.support.events import eventually, outbox_events, publish

pytestmark = pytest.mark.asyncio


async def _ledger(world: World, participant: uuid.UUID) -> list:
    async with world.app.runtime.engine.connect() as conn:
        rows = await conn.execute(
            select(store.ledger_lines)
            .where(store.ledger_lines.c.participant_id == participant)
            .order_by(store.ledger_lines.c.seq)
        )
        return rows.all()


async def test_an_attachment_accrues_the_attachment_fee_once(world: World) -> None:
    event = world.attachment_event(attached_on=date(2024, 3, 5))
    await publish(world.sandbox, event)

    async def accrued() -> list:
        lines = await _ledger(world, event.participant_id)
        assert len(lines) == 1
        return lines

    (line,) = await eventually(accrued)
    assert (line.kind, line.amount_pence, line.accrued_on, line.claim_id) == (
        "attachment",
        TARIFF["attachment"],
        date(2024, 3, 5),
        None,
    )
    assert line.provider_id == world.provider and line.programme == world.programme
    # The same attachment again (a redelivery under a new event id) accrues nothing more.
    await publish(world.sandbox, event)
    other = await world.attach()  # a later event, to know the redelivery was handled
    await eventually(lambda: _has_lines(world, other, 1))
    assert len(await _ledger(world, event.participant_id)) == 1

    recorded = [
        e
        for e in await outbox_events(world.app.runtime, "outcomes.accrual.recorded")
        if e.payload["participant_id"] == str(event.participant_id)
    ]
    assert len(recorded) == 1
    assert recorded[0].payload == {
        "line_id": str(line.id),
        "programme": world.programme,
        "provider_id": str(world.provider),
        "participant_id": str(event.participant_id),
        "claim_id": None,
        "kind": "attachment",
        "amount_pence": 30000,
        "accrued_on": "2024-03-05",
    }


async def _has_lines(world: World, participant: uuid.UUID, count: int) -> None:
    assert len(await _ledger(world, participant)) == count


async def test_rejected_claims_accrue_nothing_validated_ones_their_tariff(world: World) -> None:
    participant = await world.attach()
    await world.claim(participant, "qualification", evidence=[])
    await world.claim(participant, "education_start", "2023-01-01")
    short = await world.employ(participant, date(2024, 5, 1), hours=5)
    await world.claim(participant, "job_start", employment_id=short)
    await world.claim(participant, "sustained_13", "2024-09-01")
    assert [line.kind for line in await _ledger(world, participant)] == ["attachment"]

    job = await world.job_start(participant, date(2024, 5, 1))
    lines = await _ledger(world, participant)
    assert [(line.kind, line.amount_pence, line.claim_id) for line in lines] == [
        ("attachment", 30000, None),
        ("job_start", 120000, uuid.UUID(job["id"])),
    ]
    assert lines[1].accrued_on == date(2024, 5, 1)


async def test_the_ledger_refuses_update_delete_and_truncate(world: World) -> None:
    participant = await world.attach()
    await eventually(lambda: _has_lines(world, participant, 1))
    engine = world.app.runtime.engine  # the outcomes service's own role, owner of the table
    attempts = [
        update(store.ledger_lines)
        .where(store.ledger_lines.c.participant_id == participant)
        .values(amount_pence=1),
        delete(store.ledger_lines).where(store.ledger_lines.c.participant_id == participant),
        text("TRUNCATE outcomes.ledger_lines"),
    ]
    for statement in attempts:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(statement)
    (line,) = await _ledger(world, participant)
    assert line.amount_pence == 30000


async def test_a_statement_lists_a_periods_lines_sorted_with_their_total(world: World) -> None:
    provider = uuid.uuid4()
    p1 = await world.attach(provider=provider, attached_on=date(2024, 5, 20))
    p2 = await world.attach(provider=provider, attached_on=date(2024, 5, 3))
    p3 = await world.attach(provider=provider, attached_on=date(2024, 4, 30))
    client = world.client(provider)
    e1 = await world.employ(p1, date(2024, 5, 20), provider=provider)
    j1 = await world.claim(p1, "job_start", "2024-05-20", employment_id=e1, client=client)
    q3 = await world.claim(p3, "qualification", "2024-05-03", client=client)
    await world.claim(p2, "volunteering_start", "2024-06-01", client=client)  # next period
    await world.claim(p2, "education_start", "2024-05-10", evidence=[], client=client)  # rejected
    # Someone else's lines, and another programme's, are not on this statement.
    await world.attach(attached_on=date(2024, 5, 4))

    statement = await world.statement("2024-05", provider=provider)
    assert statement["provider_id"] == str(provider)
    assert statement["programme"] == world.programme
    assert statement["period"] == "2024-05"
    got = [
        (
            line["accrued_on"],
            line["kind"],
            line["participant_id"],
            line["claim_id"],
            line["amount_pence"],
        )
        for line in statement["lines"]
    ]
    assert got == [
        ("2024-05-03", "attachment", str(p2), None, 30000),
        ("2024-05-03", "qualification", str(p3), q3["id"], 15000),
        ("2024-05-20", "attachment", str(p1), None, 30000),
        ("2024-05-20", "job_start", str(p1), j1["id"], 120000),
    ]
    assert statement["total_pence"] == sum(line["amount_pence"] for line in statement["lines"])
    assert statement["total_pence"] == 195000

    april = await world.statement("2024-04", provider=provider)
    assert [line["kind"] for line in april["lines"]] == ["attachment"]
    assert april["total_pence"] == 30000
    empty = await world.statement("2023-01", provider=provider)
    assert (empty["lines"], empty["total_pence"]) == ([], 0)

    office = await world.office_client.get(
        "/v1/payments/statement",
        params={"programme": world.programme, "period": "2024-05", "provider_id": str(provider)},
    )
    assert office.status_code == 200
    assert office.json() == statement
    own = await client.get(
        "/v1/payments/statement",
        params={"programme": world.programme, "period": "2024-05", "provider_id": str(provider)},
    )
    assert own.json() == statement


async def test_statement_totals_always_equal_their_lines(world: World) -> None:
    provider = uuid.uuid4()
    client = world.client(provider)
    for day in range(1, 13):
        participant = await world.attach(provider=provider, attached_on=date(2024, 7, day))
        types = ["qualification", "volunteering_start", "education_start"][: day % 4]
        for type_ in types:
            await world.claim(participant, type_, f"2024-07-{day + 2:02d}", client=client)
    statement = await world.statement("2024-07", provider=provider)
    assert len(statement["lines"]) == 12 + sum(min(d % 4, 3) for d in range(1, 13))
    assert statement["total_pence"] == sum(line["amount_pence"] for line in statement["lines"])
    keys = [(line["accrued_on"], line["kind"]) for line in statement["lines"]]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"period": "2024-05"}, "programme"),
        ({"programme": "P"}, "period"),
        ({"programme": "P", "period": "2024-13"}, "period"),
        ({"programme": "P", "period": "May 2024"}, "period"),
        ({"programme": "P", "period": "2024-05", "provider_id": "nope"}, "provider_id"),
    ],
)
async def test_statement_parameters_are_checked(world: World, params, field) -> None:
    params = {k: (world.programme if v == "P" else v) for k, v in params.items()}
    response = await world.provider_client.get("/v1/payments/statement", params=params)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_who_gets_which_statement(world: World) -> None:
    params = {"programme": world.programme, "period": "2024-05"}
    office = await world.office_client.get("/v1/payments/statement", params=params)
    assert office.status_code == 422
    assert [e["field"] for e in office.json()["errors"]] == ["provider_id"]
    another = await world.provider_client.get(
        "/v1/payments/statement", params={**params, "provider_id": str(world.other_provider)}
    )
    assert another.status_code == 404
    referrer = world.client(uuid.uuid4(), "treatment")
    assert (await referrer.get("/v1/payments/statement", params=params)).status_code == 403
    unknown = await world.provider_client.get(
        "/v1/payments/statement", params={"programme": "no-such-programme", "period": "2024-05"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "programme"
