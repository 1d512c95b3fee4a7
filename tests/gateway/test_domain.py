"""The gateway's rules as pure functions: no database, no network."""

from __future__ import annotations

import hashlib
import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway import domain
from services.gateway.settings import GatewaySettings
from shared.caller import PartnerKind
from tests.support.builders import programme_body

# --- keys -----------------------------------------------------------------------------


def test_issued_keys_are_unique_well_formed_and_hashed() -> None:
    keys = [domain.generate_api_key() for _ in range(200)]
    assert len({k.token for k in keys}) == 200 and len({k.prefix for k in keys}) == 200
    for key in keys:
        assert domain.key_prefix(key.token) == key.prefix
        assert key.digest == hashlib.sha256(key.token.encode()).digest()
        assert domain.key_matches(key.token, key.digest)
        altered = key.token[:-1] + ("x" if key.token[-1] != "x" else "y")
        assert not domain.key_matches(altered, key.digest)


@given(st.text(max_size=80))
def test_anything_that_is_not_a_key_has_no_prefix_or_a_harmless_one(token: str) -> None:
    prefix = domain.key_prefix(token)
    if prefix is not None:
        assert token.startswith(f"pk_{prefix}_") and len(prefix) == 8


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
        ("abc", None),
    ],
)
def test_bearer_tokens_are_read_from_the_authorization_header(header, token) -> None:
    assert domain.bearer_token(header) == token


# --- routing --------------------------------------------------------------------------

ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    "method, path, service, template, resource",
    [
        ("GET", "/v1/referrals", "referrals", "/v1/referrals", None),
        ("GET", f"/v1/referrals/{ID}", "referrals", "/v1/referrals/{id}", ID),
        ("GET", f"/v1/referrals/{ID.upper()}", "referrals", "/v1/referrals/{id}", ID),
        ("GET", "/v1/referrals/AB123456C", "referrals", "/v1/referrals/{id}", None),
        (
            "GET",
            "/v1/outcome-claims/audit-sample",
            "outcomes",
            "/v1/outcome-claims/audit-sample",
            None,
        ),
        ("GET", f"/v1/outcome-claims/{ID}", "outcomes", "/v1/outcome-claims/{id}", ID),
        (
            "POST",
            f"/v1/participants/{ID}/employment/{uuid.uuid4()}/end",
            "casework",
            "/v1/participants/{id}/employment/{episode_id}/end",
            ID,
        ),
        ("POST", "/v1/sessions/bulk", "casework", "/v1/sessions/bulk", None),
        ("GET", "/v1/payments/statement", "outcomes", "/v1/payments/statement", None),
        ("GET", "/v1/reports/cohorts", "reporting", "/v1/reports/cohorts", None),
        ("GET", "/v1/audit", "gateway", "/v1/audit", None),
        ("DELETE", f"/v1/webhooks/{ID}", "gateway", "/v1/webhooks/{id}", ID),
        ("PUT", f"/v1/referrals/{ID}", "referrals", "/v1/referrals/{unlisted}", None),
        ("GET", "/v1/referrals/", "referrals", "/v1/referrals/{unlisted}", None),
    ],
)
def test_partner_paths_route_to_their_owner_with_a_template(
    method, path, service, template, resource
) -> None:
    match = domain.match_partner_route(method, path)
    assert match is not None
    assert (match.service, match.template, match.resource_id) == (service, template, resource)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/",
        "/v1/unknown",
        "/v1//referrals",
        "/v1/referrals/../audit",
        "/v1/./referrals",
        "/admin",
    ],
)
def test_paths_nobody_owns_or_that_clients_would_rewrite_do_not_route(path: str) -> None:
    assert domain.match_partner_route("GET", path) is None


def test_the_bulk_sync_is_the_route_that_costs_items() -> None:
    assert domain.match_partner_route("POST", "/v1/sessions/bulk").cost == "sessions"
    assert all(r.cost == "call" for r in domain.ROUTES if r.template != "/v1/sessions/bulk")


@pytest.mark.parametrize(
    "body, cost",
    [
        (b'{"sessions": [{}, {}, {}]}', 3),
        (b'{"sessions": []}', 1),
        (b'{"sessions": "x"}', 1),
        (b"[1, 2]", 1),
        (b"not json", 1),
        (b"", 1),
        (b'{"sessions": [' + b"{}," * 999 + b"{}]}", 1000),
    ],
)
def test_a_bulk_sync_costs_its_items(body: bytes, cost: int) -> None:
    assert domain.bulk_cost(body) == cost


@pytest.mark.parametrize(
    "location, expected",
    [
        (f"/v1/participants/{ID}", ID),
        (f"http://gateway/v1/referrals/{ID}/", ID),
        ("/v1/referrals/not-an-id", None),
        (None, None),
        ("", None),
    ],
)
def test_created_ids_are_read_from_location(location, expected) -> None:
    assert domain.resource_id_from_location(location) == expected


# --- rate limits ----------------------------------------------------------------------


def test_a_token_bucket_allows_its_burst_then_asks_to_wait() -> None:
    bucket = domain.TokenBucket.full(rate=2, burst=3, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(1, 0.0) == pytest.approx(0.5)
    assert bucket.take(1, 0.5) == 0  # refilled one token in half a second
    assert bucket.take(1, 0.5) == pytest.approx(0.5)
    assert bucket.take(1, 100.0) == 0 and bucket.tokens == pytest.approx(2)  # capped


def test_a_call_costing_more_than_the_burst_is_let_through_once_and_owed() -> None:
    bucket = domain.TokenBucket.full(rate=10, burst=100, now=0.0)
    assert bucket.take(1000, 0.0) == 0
    assert bucket.tokens == -900
    assert bucket.take(1, 0.0) == pytest.approx(90.1)
    assert bucket.take(1000, 100.0) == 0  # once paid back and full, again


@given(
    st.lists(st.tuples(st.integers(1, 50), st.floats(0, 5)), min_size=1, max_size=60),
)
def test_over_any_window_a_partner_gets_no_more_than_burst_plus_rate_times_time(calls) -> None:
    rate, burst = 5.0, 20
    bucket = domain.TokenBucket.full(rate, burst, 0.0)
    now, spent = 0.0, 0
    for cost, gap in calls:
        now += gap
        if bucket.take(cost, now) == 0:
            spent += cost
    # What was let through is what the bucket held plus what it refilled, with at most
    # one call's worth of debt.
    assert spent <= burst + rate * now + 50


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert domain.retry_after_header(0.01) == "1"
    assert domain.retry_after_header(1.2) == "2"
    assert domain.retry_after_header(30.0) == "30"


# --- programme definitions ------------------------------------------------------------

P1, P2 = uuid.uuid4(), uuid.uuid4()


def _definition(**overrides) -> domain.ProgrammeDefinition:
    providers = overrides.pop(
        "providers",
        [
            {"partner_id": str(P1), "local_authorities": ["Wigan", "Bolton"]},
            {"partner_id": str(P2), "local_authorities": ["Salford"]},
        ],
    )
    body = programme_body("working-well", providers, **overrides)
    return domain.ProgrammeDefinition.model_validate(body)


def test_the_contract_example_is_a_valid_definition() -> None:
    definition = _definition()
    assert domain.programme_problems(definition) == []
    kinds = {P1: PartnerKind.PROVIDER, P2: PartnerKind.PROVIDER}
    assert domain.provider_problems(definition, kinds) == []


def test_each_local_authority_maps_to_one_provider_whatever_its_spelling() -> None:
    definition = _definition(
        providers=[
            {"partner_id": str(P1), "local_authorities": ["Wigan", "Bolton"]},
            {"partner_id": str(P2), "local_authorities": ["  wigan", "Salford", "BOLTON "]},
        ]
    )
    fields = [e.field for e in domain.programme_problems(definition)]
    assert fields == ["providers[1].local_authorities[0]", "providers[1].local_authorities[2]"]


def test_one_authority_in_two_unicode_forms_is_listed_twice() -> None:
    """Referrals routes "Ynys Môn" typed either way (precomposed, or o and a combining
    circumflex) as one authority: to the first provider only, had this passed."""
    definition = _definition(
        providers=[
            {"partner_id": str(P1), "local_authorities": ["Ynys M\u00f4n"]},
            {"partner_id": str(P2), "local_authorities": ["Ynys Mo\u0302n"]},
        ]
    )
    fields = [e.field for e in domain.programme_problems(definition)]
    assert fields == ["providers[1].local_authorities[0]"]


def test_provider_problems_name_unknown_partners_and_other_kinds() -> None:
    definition = _definition()
    problems = domain.provider_problems(definition, {P1: PartnerKind.JCP})
    assert [(e.field, e.message) for e in problems] == [
        ("providers[0].partner_id", "is a jcp, not a provider"),
        ("providers[1].partner_id", "is not a known partner"),
    ]


@pytest.mark.parametrize("weeks, ok", [(13, True), (26, True), (50, True), (52, False)])
def test_sustainment_weeks_must_be_a_claimable_sustainment(weeks: int, ok: bool) -> None:
    problems = domain.programme_problems(_definition(sustainment_weeks=weeks))
    assert (problems == []) is ok


# --- webhooks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, allow_http, allow_private, ok",
    [
        ("https://hooks.example.org/p", False, False, True),
        ("https://hooks.example.org:8443/p?x=1", False, False, True),
        ("http://hooks.example.org/p", False, False, False),
        ("http://hooks.example.org/p", True, False, True),
        ("https://127.0.0.1/p", False, False, False),
        ("http://127.0.0.1:9000/p", True, True, True),
        ("https://[fe80::1]/p", False, False, False),
        ("https://100.64.0.1/p", False, False, False),  # carrier-grade NAT
        ("https://8.8.8.8/p", False, False, True),
        ("https://metadata.internal/p", False, False, False),
        ("https://intranet/p", False, False, False),
        ("https://hooks.example.org/p#x", False, False, False),
        ("https://a:b@hooks.example.org/p", False, False, False),
        ("https://hooks.example.org/p\n", False, False, False),
        ("javascript:alert(1)", True, True, False),
    ],
)
def test_webhook_url_rules(url: str, allow_http: bool, allow_private: bool, ok: bool) -> None:
    problem = domain.webhook_url_problem(url, allow_http=allow_http, allow_private=allow_private)
    assert (problem is None) is ok, problem


def test_retries_back_off_exponentially_and_the_defaults_cover_more_than_a_day() -> None:
    delays = [domain.retry_delay(n, base=10, cap=3600, jitter=0.5) for n in range(1, 12)]
    assert delays[:4] == [10, 20, 40, 80]
    assert all(later >= earlier for earlier, later in itertools.pairwise(delays))
    assert delays[-1] == 3600
    assert 8 <= domain.retry_delay(1, base=10, cap=3600, jitter=0.0) <= 12
    assert domain.retry_delay(1, base=10, cap=3600, jitter=0.999) <= 12
    settings = GatewaySettings()
    assert settings.webhook_retry_for_seconds >= 24 * 3600
    # Attempts made over the retry period at the slowest jitter: still many, spread out.
    elapsed, attempts = 0.0, 0
    while elapsed < settings.webhook_retry_for_seconds:
        attempts += 1
        elapsed += domain.retry_delay(
            attempts,
            base=settings.webhook_retry_base_seconds,
            cap=settings.webhook_retry_max_delay_seconds,
            jitter=1.0,
        )
    assert 20 <= attempts <= 40
    assert math.isfinite(elapsed)


def test_a_delivery_is_retried_for_the_whole_period_from_its_own_first_attempt() -> None:
    period = GatewaySettings().webhook_retry_for_seconds
    # First tried a day and more after it was queued (held behind its referral's earlier
    # change): its first failure is the start of its period, not the end of it.
    first = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert not domain.retry_period_over(first, first, seconds=period)
    just_before = first + timedelta(seconds=period) - timedelta(microseconds=1)
    assert not domain.retry_period_over(first, just_before, seconds=period)
    assert domain.retry_period_over(first, first + timedelta(seconds=period), seconds=period)
    assert domain.retry_period_over(first, first + timedelta(days=2), seconds=period)


def test_webhook_secrets_are_standard_webhooks_secrets() -> None:
    from standardwebhooks.webhooks import Webhook

    secret = domain.generate_webhook_secret()
    assert secret.startswith("whsec_")
    Webhook(secret)  # parses
    assert domain.generate_webhook_secret() != secret


def test_the_webhook_body_has_exactly_the_contract_fields() -> None:
    body = domain.webhook_body(
        event_id=uuid.uuid4(),
        occurred_at="2024-02-03T10:00:00+00:00",
        referral_id=uuid.uuid4(),
        external_ref="JCP-1",
        status="accepted",
    )
    assert set(body) == {"event_id", "type", "occurred_at", "referral_id", "external_ref", "status"}
    assert body["type"] == "referral.status_changed"
