"""Intake: eligibility, routing, self-referrals and the referral body (contract §2, §2.1)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.referrals.domain import today_uk
from tests.referrals.helpers import Partner, Programme, stored_count
from tests.support.builders import referral_body


def born(years_before: date, years: int, days: int = 0) -> str:
    """A date of birth that makes someone ``years`` old on ``years_before`` (+ days older)."""
    try:
        birthday = years_before.replace(year=years_before.year - years)
    except ValueError:
        birthday = years_before.replace(year=years_before.year - years, day=28)
    return (birthday - timedelta(days=days)).isoformat()


async def test_eligible_referral_is_accepted_and_routed(jcp: Partner, programme: Programme) -> None:
    body = referral_body(programme.code)
    response = await jcp.refer(body)

    assert response.status_code == 201, response.text
    referral = response.json()
    assert response.headers["location"] == f"/v1/referrals/{referral['id']}"
    assert referral["status"] == "accepted"
    assert referral["provider_id"] == str(programme.provider)
    assert referral["source"] == "jcp"
    assert referral["reasons"] == []
    assert referral["duplicate_of"] is None
    assert [h["status"] for h in referral["history"]] == ["received", "accepted"]
    assert referral["external_ref"] == body["external_ref"]
    assert referral["programme"] == programme.code
    assert referral["referred_on"] == "2024-02-03"
    assert referral["person"]["family_name"] == body["person"]["family_name"]
    assert referral["person"]["nino"] == body["person"]["nino"]
    assert referral["circumstances"] == body["circumstances"]
    assert referral["notes"] == "free text"
    # The stored referral reads back the same.
    assert await jcp.referral(referral["id"]) == referral


@pytest.mark.parametrize("kind", ["jcp", "probation", "treatment"])
async def test_source_is_the_referrers_kind(new_partner, programme: Programme, kind: str) -> None:
    response = await new_partner(kind).refer(referral_body(programme.code))
    assert response.status_code == 201
    assert response.json()["source"] == kind


async def test_local_authority_routes_to_its_provider_ignoring_case(
    jcp: Partner, programme: Programme
) -> None:
    manchester = await jcp.refer(
        referral_body(programme.code, person={"local_authority": "Manchester"})
    )
    bolton = await jcp.refer(referral_body(programme.code, person={"local_authority": "  bOLTON "}))

    assert manchester.json()["provider_id"] == str(programme.other_provider)
    assert bolton.json()["provider_id"] == str(programme.provider)
    assert bolton.json()["person"]["local_authority"] == "bOLTON"


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"circumstances": {"benefit": "PIP"}}, ["benefit_not_eligible"]),
        ({"circumstances": {"benefit": "none"}}, ["benefit_not_eligible"]),
        ({"person": {"local_authority": "Leeds"}}, ["outside_area"]),
        ({"person": {"date_of_birth": "2007-02-04"}}, ["age_out_of_range"]),  # 16 on 2024-02-03
        ({"person": {"date_of_birth": "1956-02-03"}}, ["age_out_of_range"]),  # 68
        (
            {
                "circumstances": {"benefit": "IS"},
                "person": {"date_of_birth": "1950-01-01", "local_authority": "Cardiff"},
            },
            ["benefit_not_eligible", "age_out_of_range", "outside_area"],
        ),
        (
            {"circumstances": {"benefit": "PIP"}, "person": {"local_authority": "Leeds"}},
            ["benefit_not_eligible", "outside_area"],
        ),
    ],
)
async def test_ineligible_referral_is_rejected_with_every_reason_in_order(
    jcp: Partner, programme: Programme, changes: dict, reasons: list[str]
) -> None:
    response = await jcp.refer(referral_body(programme.code, **changes))

    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["status"] == "rejected"
    assert referral["reasons"] == reasons
    assert referral["provider_id"] is None
    assert referral["duplicate_of"] is None
    assert [h["status"] for h in referral["history"]] == ["received", "rejected"]


@pytest.mark.parametrize(
    ("years", "days_older", "status"),
    [
        (18, 0, "accepted"),  # 18th birthday on referred_on
        (17, 364, "rejected"),  # the day before the 18th birthday
        (66, 364, "accepted"),  # the last day aged 66
        (67, 0, "rejected"),  # 67th birthday
    ],
)
async def test_age_is_whole_years_on_referred_on(
    jcp: Partner, programme: Programme, years: int, days_older: int, status: str
) -> None:
    referred_on = date(2024, 2, 3)
    body = referral_body(
        programme.code,
        referred_on=referred_on.isoformat(),
        person={"date_of_birth": born(referred_on, years, days_older)},
    )
    referral = (await jcp.refer(body)).json()
    assert referral["status"] == status
    if status == "rejected":
        assert referral["reasons"] == ["age_out_of_range"]


async def test_a_leap_day_birthday_counts_from_the_first_of_march(
    jcp: Partner, programme: Programme
) -> None:
    # Born 29 Feb 2004: 18 on 1 March 2022, still 17 on 28 Feb 2022.
    before = await jcp.refer(
        referral_body(
            programme.code, referred_on="2022-02-28", person={"date_of_birth": "2004-02-29"}
        )
    )
    on = await jcp.refer(
        referral_body(
            programme.code, referred_on="2022-03-01", person={"date_of_birth": "2004-02-29"}
        )
    )
    assert before.json()["reasons"] == ["age_out_of_range"]
    assert on.json()["status"] == "accepted"


async def test_programme_rules_come_from_the_definition(
    sandbox, referrals_app, jcp: Partner
) -> None:
    import uuid

    from tests.referrals.helpers import define_programme

    provider = uuid.uuid4()
    code = await define_programme(
        sandbox,
        referrals_app,
        {provider: ["Cardiff"]},
        eligible_benefits=["PIP"],
        min_age=25,
        max_age=30,
    )
    ok = await jcp.refer(
        referral_body(
            code,
            person={"local_authority": "Cardiff", "date_of_birth": "1994-01-01"},
            circumstances={"benefit": "PIP"},
        )
    )
    no = await jcp.refer(referral_body(code, person={"date_of_birth": "1990-01-01"}))
    assert ok.json()["status"] == "accepted"
    assert ok.json()["provider_id"] == str(provider)
    assert no.json()["reasons"] == ["benefit_not_eligible", "age_out_of_range", "outside_area"]


async def test_referred_on_defaults_to_today_in_the_uk(jcp: Partner, programme: Programme) -> None:
    body = referral_body(programme.code)
    del body["referred_on"]
    referral = (await jcp.refer(body)).json()
    assert referral["referred_on"] == today_uk().isoformat()
    assert referral["status"] == "accepted"


async def test_provider_self_referral_has_source_self_and_is_routed_like_any_other(
    provider: Partner, other_provider: Partner, programme: Programme
) -> None:
    own_area = await provider.refer(referral_body(programme.code))
    elsewhere = await provider.refer(
        referral_body(programme.code, person={"local_authority": "Manchester"})
    )

    assert own_area.status_code == 201
    assert own_area.json()["source"] == "self"
    assert own_area.json()["provider_id"] == str(programme.provider)
    assert elsewhere.json()["source"] == "self"
    assert elsewhere.json()["provider_id"] == str(programme.other_provider)
    # The provider sees its self-referral as its referrer does; the routed provider too.
    assert (await provider.get(f"/v1/referrals/{elsewhere.json()['id']}")).status_code == 200
    assert (await other_provider.get(f"/v1/referrals/{elsewhere.json()['id']}")).status_code == 200


async def test_programme_office_may_not_post_referrals(
    office: Partner, programme: Programme
) -> None:
    response = await office.refer(referral_body(programme.code))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_count(office.app, referrer_id=office.id) == 0


async def test_programme_office_gets_403_even_for_an_invalid_body(office: Partner) -> None:
    response = await office.refer({"nonsense": True})
    assert response.status_code == 403


async def test_unsigned_calls_are_refused(referrals_app, programme: Programme) -> None:
    async with referrals_app.client() as client:
        response = await client.post("/v1/referrals", json=referral_body(programme.code))
        listing = await client.get("/v1/referrals")
    assert response.status_code == 401
    assert listing.status_code == 401


async def test_awkward_but_valid_text_is_stored_and_returned_as_text(
    jcp: Partner, programme: Programme
) -> None:
    body = referral_body(
        programme.code,
        person={
            "given_name": "Siân  Zoë",
            "family_name": "O'Brien-Ngā'); DROP TABLE referrals;--",
            "nino": " ab 12 34 56 c ",
            "postcode": "wn11aa",
            "phone": "+44 (0)7700 900123",
        },
        notes="<script>alert('x')</script>\nSecond line\twith a tab; SELECT * FROM pg_user;",
    )
    response = await jcp.refer(body)

    assert response.status_code == 201, response.text
    person = response.json()["person"]
    assert person["given_name"] == "Siân Zoë"
    assert person["family_name"] == "O'Brien-Ngā'); DROP TABLE referrals;--"
    assert person["nino"] == "AB123456C"
    assert person["postcode"] == "WN1 1AA"
    assert person["phone"] == "+44 (0)7700 900123"
    assert response.json()["notes"] == body["notes"]
    assert (await jcp.referral(response.json()["id"]))["person"] == person


async def test_optional_fields_may_be_left_out(jcp: Partner, programme: Programme) -> None:
    body = referral_body(programme.code)
    for key in ("nino", "gender", "disability", "phone"):
        del body["person"][key]
    body["circumstances"] = {"benefit": "UC"}
    body["consent"] = {"given": True}
    del body["notes"]
    response = await jcp.refer(body)
    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral["status"] == "accepted"
    assert referral["person"]["nino"] is None
    assert referral["circumstances"] == {
        "benefit": "UC",
        "months_out_of_work": None,
        "criminal_justice": None,
        "treatment": None,
    }
    assert referral["notes"] is None
