"""The referral rules as plain functions, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.referrals.domain import (
    UNKNOWN_PROGRAMME,
    Eligibility,
    PersonKeys,
    ProgrammeRules,
    Reason,
    Status,
    StoredRequest,
    age_band,
    age_on,
    assess,
    clean_line,
    clean_text,
    grants_attachment,
    is_same_request,
    name_key,
    normalise_nino,
    normalise_postcode,
    outcome_of,
    postcode_key,
    today_uk,
)

PROVIDER = uuid.uuid4()
RULES = ProgrammeRules.from_definition(
    code="ww",
    eligible_benefits=["ESA", "JSA", "UC"],
    min_age=18,
    max_age=66,
    providers=[(PROVIDER, ["Wigan", "Bolton"])],
)


@given(
    first=st.sampled_from("ABCEGHJKLMNOPRSTWXYZ"),
    second=st.sampled_from("ABCEGHJKLMNPRSTWXYZ"),
    digits=st.integers(0, 999_999),
    suffix=st.sampled_from("ABCD"),
    lower=st.booleans(),
    spaced=st.booleans(),
)
def test_every_nino_the_rules_allow_is_accepted_and_normalised(
    first: str, second: str, digits: int, suffix: str, lower: bool, spaced: bool
) -> None:
    prefix = first + second
    number = f"{digits:06d}"
    canonical = f"{prefix}{number}{suffix}"
    written = f"{prefix} {number[:2]} {number[2:4]} {number[4:]} {suffix}" if spaced else canonical
    written = written.lower() if lower else written
    if prefix in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        with pytest.raises(ValueError):
            normalise_nino(written)
    else:
        assert normalise_nino(written) == canonical


@pytest.mark.parametrize("letter", list("DFIQUV"))
def test_nino_first_letter_rules(letter: str) -> None:
    with pytest.raises(ValueError, match="first letter"):
        normalise_nino(f"{letter}A123456A")


@pytest.mark.parametrize("letter", list("DFIOQUV"))
def test_nino_second_letter_rules(letter: str) -> None:
    with pytest.raises(ValueError, match="second letter"):
        normalise_nino(f"A{letter}123456A")


@pytest.mark.parametrize(
    "written",
    [
        "\ufb06123456C",  # the ligature "st", which upper() turns into "ST"
        "AB123456\u0441",  # a Cyrillic letter that looks like "C"
        "\u0131A123456C",  # dotless i, which upper() turns into "I"
        "\uff21\uff22123456C",  # full-width letters
        "AB\x1c123456C",  # a separator control character, which \s matches
        "AB\t123456C",
        "AB\u00a0123456C",  # no-break space
    ],
)
def test_a_nino_is_plain_letters_digits_and_spaces(written: str) -> None:
    with pytest.raises(ValueError):
        normalise_nino(written)


@pytest.mark.parametrize("written", ["WN1\x1f1AA", "WN1\u00a01AA", "\ufb06 1AA", "WN1 1\uff21A"])
def test_a_postcode_is_plain_letters_digits_and_spaces(written: str) -> None:
    with pytest.raises(ValueError):
        normalise_postcode(written)


def test_postcode_normalisation() -> None:
    assert normalise_postcode(" wn1 1aa ") == "WN1 1AA"
    assert normalise_postcode("EC1A1BB") == "EC1A 1BB"
    assert postcode_key("wn1 1aa") == postcode_key("WN11AA") == "WN11AA"
    with pytest.raises(ValueError):
        normalise_postcode("WN1 1A")


def test_family_names_compare_ignoring_case_and_spacing() -> None:
    assert name_key("  McDONALD ") == name_key("mcdonald")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Zoe\u0308") == name_key("Zoë")  # decomposed and composed forms


def test_text_is_cleaned() -> None:
    assert clean_line("  Siân   Lloyd ") == "Siân Lloyd"
    assert clean_text(" a\n\tb ") == "a\n\tb"
    for bad in ("a\x00", "a\nb", "\x1b"):
        with pytest.raises(ValueError):
            clean_line(bad)
    with pytest.raises(ValueError):
        clean_text("a\x00b")


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2000, 5, 17), date(2018, 5, 16), 17),
        (date(2000, 5, 17), date(2018, 5, 17), 18),
        (date(2004, 2, 29), date(2022, 2, 28), 17),
        (date(2004, 2, 29), date(2022, 3, 1), 18),
        (date(2004, 2, 29), date(2024, 2, 29), 20),
    ],
)
def test_age_is_whole_years_completed(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (17, None),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (34, "25-34"),
        (35, "35-49"),
        (49, "35-49"),
        (50, "50+"),
        (90, "50+"),
    ],
)
def test_age_bands(age: int, band: str | None) -> None:
    assert age_band(age) == band


def test_eligibility_lists_every_failing_reason_in_order() -> None:
    result = assess(
        RULES,
        benefit="PIP",
        date_of_birth=date(1900, 1, 1),
        referred_on=date(2024, 2, 3),
        local_authority="Leeds",
    )
    assert result.reasons == (
        Reason.BENEFIT_NOT_ELIGIBLE,
        Reason.AGE_OUT_OF_RANGE,
        Reason.OUTSIDE_AREA,
    )
    assert result.provider_id is None


def test_routing_ignores_case_and_spacing_of_the_local_authority() -> None:
    result = assess(
        RULES,
        benefit="UC",
        date_of_birth=date(1990, 1, 1),
        referred_on=date(2024, 2, 3),
        local_authority=" bolton ",
    )
    assert result.eligible
    assert result.provider_id == PROVIDER


def test_the_first_provider_named_keeps_an_area_listed_twice() -> None:
    other = uuid.uuid4()
    rules = ProgrammeRules.from_definition(
        code="x",
        eligible_benefits=["ESA"],
        min_age=18,
        max_age=66,
        providers=[(PROVIDER, ["Wigan"]), (other, ["WIGAN", "Leeds"])],
    )
    assert rules.provider_for("wigan") == PROVIDER
    assert rules.provider_for("Leeds") == other


def test_outcomes() -> None:
    duplicate_of = uuid.uuid4()
    eligible = Eligibility((), PROVIDER)
    assert outcome_of(eligible, None).status is Status.ACCEPTED
    assert outcome_of(eligible, None).provider_id == PROVIDER
    duplicate = outcome_of(eligible, duplicate_of)
    assert (duplicate.status, duplicate.duplicate_of, duplicate.provider_id) == (
        Status.DUPLICATE,
        duplicate_of,
        None,
    )
    rejected = outcome_of(Eligibility((Reason.OUTSIDE_AREA,), None), duplicate_of)
    assert (rejected.status, rejected.reasons, rejected.duplicate_of) == (
        Status.REJECTED,
        ("outside_area",),
        None,
    )
    assert UNKNOWN_PROGRAMME.reasons == ("unknown_programme",)


def keys(nino: str | None, family: str = "jones", born: date = date(1985, 3, 9)) -> PersonKeys:
    return PersonKeys("ww", nino, family, born, "WN11AA")


def test_referrals_that_could_be_the_same_person_share_a_lock() -> None:
    with_nino = keys("AB123456C")
    assert set(with_nino.lock_ids()) & set(keys("AB123456C", family="smith").lock_ids())
    assert set(with_nino.lock_ids()) & set(keys(None).lock_ids())
    assert set(keys(None).lock_ids()) & set(keys(None).lock_ids())
    # Different people need not wait for each other.
    assert not set(keys("AB123456C").lock_ids()) & set(keys("JT987654B", family="x").lock_ids())
    assert with_nino.lock_ids() == sorted(with_nino.lock_ids())
    assert (
        keys("AB123456C").lock_ids()
        != PersonKeys("other", "AB123456C", "jones", date(1985, 3, 9), "WN11AA").lock_ids()
    )


def test_a_retry_is_the_same_request_when_referred_on_means_the_same_day() -> None:
    today = date(2024, 3, 1)
    defaulted = StoredRequest("fp", date(2024, 2, 28), referred_on_defaulted=True)
    explicit = StoredRequest("fp", date(2024, 2, 28), referred_on_defaulted=False)
    same = {"fingerprint": "fp", "today": today}
    assert is_same_request(defaulted, referred_on=None, **same)
    assert is_same_request(defaulted, referred_on=date(2024, 2, 28), **same)
    assert not is_same_request(defaulted, referred_on=date(2024, 2, 27), **same)
    assert is_same_request(explicit, referred_on=date(2024, 2, 28), **same)
    assert not is_same_request(explicit, referred_on=None, **same)
    assert is_same_request(
        StoredRequest("fp", today, False), fingerprint="fp", referred_on=None, today=today
    )
    assert not is_same_request(defaulted, fingerprint="other", referred_on=None, today=today)


def test_today_is_the_uk_date() -> None:
    # 23:30 UTC on 30 June is already 1 July in London (BST); in winter it is not.
    assert today_uk(datetime(2024, 6, 30, 23, 30, tzinfo=UTC)) == date(2024, 7, 1)
    assert today_uk(datetime(2024, 1, 31, 23, 30, tzinfo=UTC)) == date(2024, 1, 31)


# --- attachment asked for by casework -----------------------------------------------------

ROUTED, PARTICIPANT = uuid.uuid4(), uuid.uuid4()


def grants(status: Status, *, provider=ROUTED, attached_to=None, participant=PARTICIPANT):
    return grants_attachment(
        status,
        routed_to=ROUTED,
        attached_to=attached_to,
        provider_id=provider,
        participant_id=participant,
    )


def test_an_accepted_referral_is_granted_to_the_provider_it_is_routed_to() -> None:
    assert grants(Status.ACCEPTED)
    assert not grants(Status.ACCEPTED, provider=uuid.uuid4())


@pytest.mark.parametrize(
    "status",
    [Status.RECEIVED, Status.REJECTED, Status.DUPLICATE, Status.WITHDRAWN, Status.DECLINED],
)
def test_a_referral_not_accepted_is_refused(status: Status) -> None:
    assert not grants(status)


def test_an_attached_referral_is_granted_again_only_to_its_participant() -> None:
    assert grants(Status.ATTACHED, attached_to=PARTICIPANT)
    assert not grants(Status.ATTACHED, attached_to=uuid.uuid4())
