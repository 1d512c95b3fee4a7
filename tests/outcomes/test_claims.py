"""Outcome claims through the service's HTTP API (contract §4): the rules on real facts
arriving by events, input validation, visibility and listing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.outcomes.world import PAYSLIP, SELF_DECLARED, World
from tests.support.events import outbox_events

pytestmark = pytest.mark.asyncio


async def test_a_job_start_on_known_facts_is_validated_with_its_record(world: World) -> None:
    participant = await world.attach()
    episode = await world.employ(participant, date(2024, 5, 1), hours=30)
    response = await world.provider_client.post(
        "/v1/outcome-claims",
        json=world.claim_body(participant, "job_start", "2024-05-01", employment_id=episode),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "submitted"
    assert created["reasons"] == []
    assert created["participant_id"] == str(participant)
    assert created["employment_id"] == str(episode)
    assert created["evidence"] == PAYSLIP
    assert response.headers["location"] == f"/v1/outcome-claims/{created['id']}"

    claim = await world.decided(created["id"])
    assert claim["status"] == "validated"
    assert claim["reasons"] == []
    assert claim["programme"] == world.programme
    assert claim["decided_at"] is not None
    record = claim["decision"]
    assert record["decided_by"] == "rules"
    assert record["rules"]["facts_complete"] is True
    checks = {c["rule"]: c for c in record["rules"]["checks"]}
    assert list(checks) == [
        "not_attached",
        "outside_support_window",
        "duplicate_outcome",
        "hours_below_minimum",
        "no_job_start",
        "not_sustained",
        "missing_evidence",
    ]
    assert checks["outside_support_window"]["facts"]["attached_on"] == "2024-02-20"
    assert checks["hours_below_minimum"]["facts"]["hours_per_week"] == 30
    assert checks["no_job_start"]["result"] == "not_applicable"


async def test_each_rule_alone(world: World) -> None:
    # not_attached: a participant of another provider (accepted, then rejected).
    theirs = await world.attach(provider=world.other_provider)
    claim = await world.claim(theirs, "qualification")
    assert (claim["status"], claim["reasons"]) == ("rejected", ["not_attached"])
    assert claim["programme"] is None  # nothing about their participant is shown

    # outside_support_window: before attachment, and more than 104 weeks after it.
    participant = await world.attach()
    early = await world.claim(participant, "qualification", "2024-02-19")
    assert early["reasons"] == ["outside_support_window"]
    late_day = (date(2024, 2, 20) + timedelta(weeks=104, days=1)).isoformat()
    late = await world.claim(participant, "qualification", late_day)
    assert late["reasons"] == ["outside_support_window"]

    # duplicate_outcome: the same type again for the participant.
    first = await world.claim(participant, "volunteering_start", "2024-04-01")
    assert first["status"] == "validated"
    again = await world.claim(participant, "volunteering_start", "2024-04-02")
    assert again["reasons"] == ["duplicate_outcome"]
    assert again["decision"]["rules"]["checks"][2]["facts"] == {"existing_claim_id": first["id"]}

    # hours_below_minimum: a 15-hour job, but not self-employment.
    short = await world.employ(participant, date(2024, 5, 1), hours=15)
    claim = await world.claim(participant, "job_start", "2024-05-01", employment_id=short)
    assert claim["reasons"] == ["hours_below_minimum"]
    own_business = await world.employ(participant, date(2024, 5, 1), hours=10, self_employed=True)
    claim = await world.claim(participant, "job_start", "2024-05-01", employment_id=own_business)
    assert claim["status"] == "validated"

    # missing_evidence: empty, or left out.
    other = await world.attach()
    claim = await world.claim(other, "education_start", "2024-04-01", evidence=[])
    assert claim["reasons"] == ["missing_evidence"]
    body = world.claim_body(other, "education_start", "2024-04-02")
    del body["evidence"]
    response = await world.provider_client.post("/v1/outcome-claims", json=body)
    assert response.status_code == 201
    assert (await world.decided(response.json()["id"]))["reasons"] == ["missing_evidence"]


async def test_sustainment_rules(world: World) -> None:
    participant = await world.attach()
    # no_job_start (then not_sustained is not checked).
    claim = await world.claim(participant, "sustained_13", "2024-09-01")
    assert claim["reasons"] == ["no_job_start"]
    checks = {c["rule"]: c["result"] for c in claim["decision"]["rules"]["checks"]}
    assert checks["not_sustained"] == "not_checked"

    # A job start on 2024-05-01, ended after 8 weeks, then 10 weeks out of work.
    await world.job_start(participant, date(2024, 5, 1), date(2024, 6, 25))
    await world.employ(participant, date(2024, 9, 3))
    claim = await world.claim(participant, "sustained_13", "2024-09-30")
    assert claim["reasons"] == ["not_sustained"]
    facts = {c["rule"]: c for c in claim["decision"]["rules"]["checks"]}["not_sustained"]["facts"]
    assert facts["covered_days"] == 56
    assert facts["required_days"] == 91
    assert facts["window_starts_on"] == "2024-05-01"
    assert facts["window_ends_before"] == "2024-08-28"  # start + 17 weeks, not the claim date

    # 26 weeks in 30 from 2024-05-01: only 8 + (2024-09-03 .. 2024-11-26) = 8 + 12 weeks.
    claim = await world.claim(participant, "sustained_26", "2024-11-27")
    assert claim["reasons"] == ["not_sustained"]


async def test_a_sustained_outcome_over_gapped_and_overlapping_jobs(world: World) -> None:
    participant = await world.attach()
    start = date(2024, 3, 4)
    await world.job_start(participant, start, start + timedelta(weeks=20, days=-1))
    # Overlapping second job, then a gap of 4 weeks, then an ongoing job.
    await world.employ(
        participant, start + timedelta(weeks=18), start + timedelta(weeks=22, days=-1)
    )
    await world.employ(participant, start + timedelta(weeks=26))
    claim = await world.claim(
        participant, "sustained_50", (start + timedelta(weeks=54)).isoformat()
    )
    assert claim["status"] == "validated", claim
    facts = claim["decision"]["rules"]["checks"][5]["facts"]
    assert facts["covered_days"] == 50 * 7
    assert len(facts["episodes"]) == 3


async def test_rules_in_combination_are_listed_in_the_contracts_order(world: World) -> None:
    participant = await world.attach()
    first = await world.job_start(participant, date(2024, 5, 1))
    short = await world.employ(participant, date(2024, 1, 10), hours=8)
    claim = await world.claim(
        participant, "job_start", "2024-01-10", employment_id=short, evidence=[]
    )
    assert claim["status"] == "rejected"
    assert claim["reasons"] == [
        "outside_support_window",
        "duplicate_outcome",
        "hours_below_minimum",
        "missing_evidence",
    ]
    assert first["status"] == "validated"

    theirs = await world.attach(provider=world.other_provider)
    claim = await world.claim(theirs, "sustained_13", "2024-09-01", evidence=[])
    assert claim["reasons"] == ["not_attached", "missing_evidence"]


async def test_a_claim_on_another_providers_participant_reveals_nothing(world: World) -> None:
    theirs = await world.attach(provider=world.other_provider)
    episode = await world.employ(theirs, date(2024, 5, 1), provider=world.other_provider)
    claim = await world.claim(theirs, "job_start", "2024-05-01", employment_id=episode)
    assert claim["reasons"] == ["not_attached"]
    text = str(claim["decision"])
    assert "2024-02-20" not in text and str(episode) not in text.replace(claim["employment_id"], "")
    # The participant's own provider never sees it, nor is its slot taken.
    owner = world.client(world.other_provider)
    assert (await owner.get(f"/v1/outcome-claims/{claim['id']}")).status_code == 404
    theirs_claim = await world.claim(
        theirs, "job_start", "2024-05-01", employment_id=episode, client=owner
    )
    assert theirs_claim["status"] == "validated"


async def test_job_start_requires_employment_id(world: World) -> None:
    participant = await world.attach()
    response = await world.provider_client.post(
        "/v1/outcome-claims", json=world.claim_body(participant, "job_start")
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["employment_id"]


async def test_an_episode_of_another_participant_is_refused(world: World) -> None:
    participant = await world.attach()
    someone_else = await world.attach()
    episode = await world.employ(someone_else, date(2024, 5, 1))
    response = await world.provider_client.post(
        "/v1/outcome-claims",
        json=world.claim_body(participant, "job_start", employment_id=episode),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "employment_id"
    listed = await world.provider_client.get(
        "/v1/outcome-claims", params={"participant_id": str(participant)}
    )
    assert listed.json()["items"] == []


BAD_BODIES = [
    ({"type": "job_begin"}, "type"),
    ({"type": None}, "type"),
    ({"achieved_on": "2024-02-30"}, "achieved_on"),
    ({"achieved_on": "01/05/2024"}, "achieved_on"),
    ({"achieved_on": 1714521600}, "achieved_on"),
    ({"achieved_on": "2024-05-01T00:00:00"}, "achieved_on"),
    ({"achieved_on": "2999-01-01"}, "achieved_on"),
    ({"participant_id": "not-a-uuid"}, "participant_id"),
    ({"participant_id": 12}, "participant_id"),
    ({"employment_id": "nope"}, "employment_id"),
    ({"evidence": [{"kind": "selfie"}]}, "evidence[0].kind"),
    ({"evidence": [{"reference": "PS-1"}]}, "evidence[0].kind"),
    ({"evidence": [{"kind": "payslip", "dated": "2024-13-01"}]}, "evidence[0].dated"),
    ({"evidence": [{"kind": "payslip", "dated": "2999-01-01"}]}, "evidence[0].dated"),
    ({"evidence": [{"kind": "payslip", "reference": ""}]}, "evidence[0].reference"),
    ({"evidence": [{"kind": "payslip", "reference": "x" * 201}]}, "evidence[0].reference"),
    ({"evidence": [{"kind": "payslip", "amount": 3}]}, "evidence[0].amount"),
    ({"evidence": {"kind": "payslip"}}, "evidence"),
    ({"evidence": [{"kind": "payslip"}] * 51}, "evidence"),
    ({"employment": "x"}, "employment"),
]


@pytest.mark.parametrize("change, field", BAD_BODIES)
async def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    world: World, change, field
) -> None:
    participant = await world.attach()
    body = {**world.claim_body(participant, "qualification", "2024-05-01"), **change}
    response = await world.provider_client.post("/v1/outcome-claims", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    listed = await world.office_client.get(
        "/v1/outcome-claims", params={"participant_id": str(participant)}
    )
    assert listed.json()["items"] == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"participant_id": '])
async def test_unparseable_bodies_are_422(world: World, raw: bytes) -> None:
    response = await world.provider_client.post(
        "/v1/outcome-claims", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_who_may_call_what(world: World) -> None:
    participant = await world.attach()
    body = world.claim_body(participant, "qualification")
    for kind in ("jcp", "probation", "treatment", "programme_office"):
        client = world.client(uuid.uuid4(), kind)
        response = await client.post("/v1/outcome-claims", json=body)
        assert response.status_code == 403, kind
        assert response.headers["content-type"] == "application/problem+json"
    referrer = world.client(uuid.uuid4(), "jcp")
    assert (await referrer.get("/v1/outcome-claims")).status_code == 403
    claim = await world.claim(participant, "qualification")
    assert (await referrer.get(f"/v1/outcome-claims/{claim['id']}")).status_code == 403
    # Not through the gateway at all.
    async with world.app.client() as unsigned:
        assert (await unsigned.get("/v1/outcome-claims")).status_code == 401
        assert (await unsigned.post("/v1/outcome-claims", json=body)).status_code == 401


async def test_reading_claims_and_visibility(world: World) -> None:
    participant = await world.attach()
    claim = await world.claim(participant, "qualification")
    mine = await world.provider_client.get(f"/v1/outcome-claims/{claim['id']}")
    assert mine.status_code == 200
    assert mine.json() == claim
    office = await world.office_client.get(f"/v1/outcome-claims/{claim['id']}")
    assert office.status_code == 200
    stranger = world.client(uuid.uuid4())
    assert (await stranger.get(f"/v1/outcome-claims/{claim['id']}")).status_code == 404
    for missing in (uuid.uuid4(), "not-a-uuid"):
        response = await world.provider_client.get(f"/v1/outcome-claims/{missing}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert (await stranger.get("/v1/outcome-claims")).json()["items"] == []


async def test_listing_filters_and_pages(world: World) -> None:
    provider = uuid.uuid4()
    client = world.client(provider)
    participant = await world.attach(provider=provider)
    other = await world.attach(provider=provider)
    made = []
    for type_ in ("qualification", "volunteering_start", "education_start"):
        made.append(await world.claim(participant, type_, client=client))
    made.append(await world.claim(other, "qualification", evidence=SELF_DECLARED, client=client))
    made.append(await world.claim(other, "education_start", evidence=[], client=client))

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/outcome-claims", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in reversed(made)]  # most recent first, each once

    async def ids(**params) -> list[str]:
        response = await client.get("/v1/outcome-claims", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(participant_id=str(other)) == [made[4]["id"], made[3]["id"]]
    assert await ids(status="review") == [made[3]["id"]]
    assert await ids(status="rejected") == [made[4]["id"]]
    assert await ids(type="volunteering_start") == [made[1]["id"]]
    assert len(await ids(programme=world.programme)) == 5
    office = await world.office_client.get(
        "/v1/outcome-claims", params={"participant_id": str(participant)}
    )
    assert len(office.json()["items"]) == 3


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"status": "paid"}, "status"),
        ({"type": "jobstart"}, "type"),
        ({"participant_id": "x"}, "participant_id"),
        ({"cursor": "garbage!"}, "cursor"),
    ],
)
async def test_listing_refuses_bad_parameters(world: World, params, field) -> None:
    response = await world.provider_client.get("/v1/outcome-claims", params=params)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_decisions_are_published_without_personal_data(world: World) -> None:
    participant = await world.attach()
    validated = await world.claim(participant, "qualification")
    rejected = await world.claim(participant, "education_start", evidence=[])
    events = {
        e.payload["claim_id"]: e
        for e in await outbox_events(world.app.runtime, "outcomes.claim.decided")
    }
    for claim in (validated, rejected):
        payload = events[claim["id"]].payload
        assert payload["status"] == claim["status"]
        assert payload["reasons"] == claim["reasons"]
        assert payload["programme"] == world.programme
        assert payload["provider_id"] == str(world.provider)
        assert payload["decided_by"] == "rules"
        assert "evidence" not in payload and "PS-1" not in str(payload)


async def test_every_bad_field_is_named_at_once(world: World) -> None:
    participant = await world.attach()
    body = world.claim_body(
        participant,
        "job_start",
        "2999-01-01",
        evidence=[{"kind": "payslip"}, {"kind": "payslip", "dated": "2999-02-01"}],
    )
    response = await world.provider_client.post("/v1/outcome-claims", json=body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [
        "employment_id",
        "achieved_on",
        "evidence[1].dated",
    ]
