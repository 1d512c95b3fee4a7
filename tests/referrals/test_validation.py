"""Bad input: 422 problem naming each bad field, and nothing stored (contract §2, §7)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from services.referrals.domain import today_uk
from tests.referrals.helpers import Partner, Programme, events_by_referrer, stored_count
from tests.support.builders import referral_body

MISSING = object()


def changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``body`` with the field at dotted ``path`` set to ``value`` (or removed: MISSING)."""
    body = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is MISSING:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return body


async def assert_refused(
    partner: Partner, body: Any, fields: set[str], *, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await partner.post("/v1/referrals", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert {"type", "title", "detail", "errors"} <= problem.keys()
    named = {error["field"] for error in problem["errors"]}
    assert fields <= named, problem["errors"]
    assert all(error["message"] for error in problem["errors"])
    # Nothing stored, nothing published.
    assert await stored_count(partner.app, referrer_id=partner.id) == 0
    assert await events_by_referrer(partner.app, partner.id) == []
    return problem


REQUIRED = [
    "external_ref",
    "programme",
    "person",
    "person.given_name",
    "person.family_name",
    "person.date_of_birth",
    "person.postcode",
    "person.local_authority",
    "circumstances",
    "circumstances.benefit",
    "consent",
    "consent.given",
]


@pytest.mark.parametrize("path", REQUIRED)
async def test_each_required_field_missing_is_named(
    jcp: Partner, programme: Programme, path: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, MISSING), {path})


@pytest.mark.parametrize("path", REQUIRED)
async def test_each_required_field_null_is_named(
    jcp: Partner, programme: Programme, path: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, None), {path})


@pytest.mark.parametrize(
    "path",
    [
        "external_ref",
        "programme",
        "person.given_name",
        "person.family_name",
        "person.local_authority",
        "person.postcode",
        "person.nino",
    ],
)
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
async def test_empty_and_blank_strings_are_refused(
    jcp: Partner, programme: Programme, path: str, blank: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, blank), {path})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("external_ref", 123),
        ("programme", ["working-well"]),
        ("person.given_name", 42),
        ("person.family_name", {"name": "x"}),
        ("person.date_of_birth", 19810517),
        ("person.date_of_birth", "17/05/1981"),
        ("person.date_of_birth", "1981-05-17T00:00:00"),
        ("person.date_of_birth", "1981-02-30"),
        ("person.nino", 123456),
        ("person.postcode", 11),
        ("person.disability", "yes"),
        ("person.disability", 1),
        ("person.phone", 7700900123),
        ("person", "Sam Taylor"),
        ("circumstances.months_out_of_work", "30"),
        ("circumstances.months_out_of_work", 2.5),
        ("circumstances.months_out_of_work", True),
        ("consent.given", "true"),
        ("consent.given", 1),
        ("consent.recorded_on", "yesterday"),
        ("referred_on", "2024-13-01"),
        ("referred_on", 20240203),
        ("notes", ["a", "b"]),
    ],
)
async def test_wrong_types_are_refused(
    jcp: Partner, programme: Programme, path: str, value: Any
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, value), {path})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("person.gender", "F"),
        ("person.gender", "Female"),
        ("person.gender", ""),
        ("circumstances.benefit", "esa"),
        ("circumstances.benefit", "Universal Credit"),
        ("circumstances.criminal_justice", "parole"),
        ("circumstances.treatment", "yes"),
    ],
)
async def test_values_outside_the_contracts_lists_are_refused(
    jcp: Partner, programme: Programme, path: str, value: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, value), {path})


@pytest.mark.parametrize(
    "nino",
    [
        *(f"{first}A123456C" for first in "DFIQUV"),
        *(f"A{second}123456C" for second in "DFIOQUV"),
        *(f"{prefix}123456C" for prefix in ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"]),
        "AB123456E",  # suffix not A-D
        "AB123456",  # no suffix
        "AB12345C",  # five digits
        "AB1234567C",  # seven digits
        "A1123456C",
        "ABC23456C",
        "AB-12-34-56-C",
        "AB123456C1",
        "\ufb06123456C",  # a ligature that upper() would turn into "ST"
        "AB\x1c123456C",  # a control character that \s would have stripped
        "AB 123456 \u0441",  # a Cyrillic letter that looks like "C"
    ],
)
async def test_nino_rules(jcp: Partner, programme: Programme, nino: str) -> None:
    await assert_refused(jcp, referral_body(programme.code, person={"nino": nino}), {"person.nino"})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("AB123456C", "AB123456C"),
        ("ab123456c", "AB123456C"),
        ("AB 12 34 56 C", "AB123456C"),
        ("  jz 65 43 21 d ", "JZ654321D"),
        ("OA123456A", "OA123456A"),  # O is allowed first, not second
    ],
)
async def test_valid_ninos_are_normalised(
    jcp: Partner, programme: Programme, given: str, stored: str
) -> None:
    response = await jcp.refer(referral_body(programme.code, person={"nino": given}))
    assert response.status_code == 201, response.text
    assert response.json()["person"]["nino"] == stored


@pytest.mark.parametrize(
    "postcode",
    [
        *("12345", "WN1", "WN1 1A", "WN1 1AAA", "WNN 1AA", "1WN 1AA", "WN1-1AA", "W1 A"),
        *("WN1\x1f1AA", "\ufb06 1AA", "WN1\u00a01AA"),
    ],
)
async def test_postcode_must_be_a_uk_postcode(
    jcp: Partner, programme: Programme, postcode: str
) -> None:
    await assert_refused(
        jcp, referral_body(programme.code, person={"postcode": postcode}), {"person.postcode"}
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("WN1 1AA", "WN1 1AA"),
        ("wn11aa", "WN1 1AA"),
        ("  m1   1ae ", "M1 1AE"),
        ("B33 8TH", "B33 8TH"),
        ("cr26xh", "CR2 6XH"),
        ("DN55 1PT", "DN55 1PT"),
        ("W1A 0AX", "W1A 0AX"),
        ("ec1a1bb", "EC1A 1BB"),
    ],
)
async def test_valid_postcodes_are_stored_in_canonical_form(
    jcp: Partner, programme: Programme, given: str, stored: str
) -> None:
    response = await jcp.refer(referral_body(programme.code, person={"postcode": given}))
    assert response.status_code == 201, response.text
    assert response.json()["person"]["postcode"] == stored


async def test_consent_must_be_given(jcp: Partner, programme: Programme) -> None:
    await assert_refused(
        jcp, referral_body(programme.code, consent={"given": False}), {"consent.given"}
    )


async def test_referred_on_may_not_be_in_the_future(jcp: Partner, programme: Programme) -> None:
    tomorrow = (today_uk() + timedelta(days=1)).isoformat()
    await assert_refused(jcp, referral_body(programme.code, referred_on=tomorrow), {"referred_on"})


async def test_referred_on_today_is_fine(jcp: Partner, programme: Programme) -> None:
    response = await jcp.refer(referral_body(programme.code, referred_on=today_uk().isoformat()))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("date_of_birth", "referred_on"),
    [
        ("2099-01-01", "2024-02-03"),  # in the future
        ("1890-01-01", "2024-02-03"),  # more than 120 years ago
        ("2024-02-03", "2024-02-03"),  # born on the day of the referral
        ("2024-02-10", "2024-02-03"),  # born after it
    ],
)
async def test_date_of_birth_must_be_sane(
    jcp: Partner, programme: Programme, date_of_birth: str, referred_on: str
) -> None:
    body = referral_body(
        programme.code, referred_on=referred_on, person={"date_of_birth": date_of_birth}
    )
    await assert_refused(jcp, body, {"person.date_of_birth"})


async def test_a_future_date_of_birth_is_named_even_when_the_referral_date_is_wrong_too(
    jcp: Partner, programme: Programme
) -> None:
    tomorrow = (today_uk() + timedelta(days=1)).isoformat()
    body = referral_body(
        programme.code, referred_on=tomorrow, person={"date_of_birth": "2099-01-01"}
    )
    await assert_refused(jcp, body, {"referred_on", "person.date_of_birth"})


async def test_consent_recorded_in_the_future_is_refused(
    jcp: Partner, programme: Programme
) -> None:
    tomorrow = (today_uk() + timedelta(days=1)).isoformat()
    body = referral_body(programme.code, consent={"given": True, "recorded_on": tomorrow})
    await assert_refused(jcp, body, {"consent.recorded_on"})


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("external_ref", 100),
        ("programme", 100),
        ("person.given_name", 100),
        ("person.family_name", 100),
        ("person.local_authority", 100),
        ("notes", 5000),
    ],
)
async def test_text_is_length_limited(
    jcp: Partner, programme: Programme, path: str, limit: int
) -> None:
    body = referral_body(programme.code)
    await assert_refused(jcp, changed(body, path, "x" * (limit + 1)), {path})
    # Exactly at the limit is fine (surrounding spaces do not count).
    at_limit = changed(body, path, "  " + "y" * limit + "  ")
    if path == "programme":
        return  # a 100-character programme code is valid input for an unknown programme
    response = await jcp.refer(at_limit)
    assert response.status_code == 201, response.text


async def test_a_huge_string_is_refused(jcp: Partner, programme: Programme) -> None:
    body = referral_body(programme.code, notes="é" * 200_000)
    await assert_refused(jcp, body, {"notes"})


@pytest.mark.parametrize("path", ["person.given_name", "person.family_name", "external_ref"])
@pytest.mark.parametrize("bad", ["Sam\x00", "Sam\nTaylor", "\x1b[31mSam", "Sam\x7f"])
async def test_control_characters_are_refused(
    jcp: Partner, programme: Programme, path: str, bad: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, bad), {path})


async def test_nul_in_notes_is_refused(jcp: Partner, programme: Programme) -> None:
    await assert_refused(jcp, referral_body(programme.code, notes="a\x00b"), {"notes"})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("circumstances.months_out_of_work", -1),
        ("circumstances.months_out_of_work", 100_000),
        ("person.phone", "call me maybe"),
        ("person.phone", "123"),
        ("person.phone", "+44 7700 900123 ext 5"),
    ],
)
async def test_out_of_range_values_are_refused(
    jcp: Partner, programme: Programme, path: str, value: Any
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, value), {path})


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("referredOn", "referredOn"),
        ("person.nin0", "person.nin0"),
        ("circumstances.housing", "circumstances.housing"),
        ("consent.signed_by", "consent.signed_by"),
    ],
)
async def test_unknown_fields_are_refused_so_typos_are_not_lost(
    jcp: Partner, programme: Programme, path: str, field: str
) -> None:
    await assert_refused(jcp, changed(referral_body(programme.code), path, "x"), {field})


async def test_every_bad_field_is_named_at_once(jcp: Partner, programme: Programme) -> None:
    body = referral_body(
        programme.code,
        person={"nino": "QQ123456C", "postcode": "nowhere", "gender": "f", "given_name": ""},
        circumstances={"benefit": "ESB"},
        consent={"given": False},
    )
    problem = await assert_refused(
        jcp,
        body,
        {
            "person.nino",
            "person.postcode",
            "person.gender",
            "person.given_name",
            "circumstances.benefit",
            "consent.given",
        },
    )
    assert len(problem["errors"]) == 6


@pytest.mark.parametrize("body", [[], "referral", 42, None])
async def test_a_body_that_is_not_an_object_is_refused(jcp: Partner, body: Any) -> None:
    response = await jcp.post("/v1/referrals", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 0


async def test_malformed_json_is_refused(jcp: Partner) -> None:
    response = await jcp.post(
        "/v1/referrals",
        content=b'{"external_ref": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "body", "message": "is not valid JSON"}]
    assert await stored_count(jcp.app, referrer_id=jcp.id) == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve".encode()])
async def test_a_malformed_idempotency_key_is_refused(
    jcp: Partner, programme: Programme, key: str | bytes
) -> None:
    await assert_refused(
        jcp, referral_body(programme.code), {"Idempotency-Key"}, headers={"Idempotency-Key": key}
    )


async def test_problem_bodies_do_not_echo_personal_data(jcp: Partner, programme: Programme) -> None:
    body = referral_body(programme.code, person={"nino": "QQ999999Q", "postcode": "SECRET-PC"})
    response = await jcp.refer(body)
    assert response.status_code == 422
    assert "QQ999999Q" not in response.text
    assert "SECRET-PC" not in response.text
