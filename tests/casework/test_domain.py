"""Casework rules as pure functions: no database, no broker."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.casework.domain import (
    BARRIER_KEYS,
    REFERRAL_STAGE,
    Attachment,
    AttachmentOutcome,
    AttachmentRequest,
    AttachmentState,
    ExistingParticipant,
    InvalidItem,
    KnownReferral,
    ParticipantScope,
    ReferralFacts,
    ReferralNews,
    SessionRecord,
    days_without_contact,
    decide_attachment,
    end_conflict,
    exit_conflict,
    lacks_contact,
    merge_all,
    plan_session_sync,
    referral_decided,
    session_problem,
    severe_barriers,
    status_supersedes,
    sync_status,
    uk_date,
    uk_today,
)

PROVIDER = uuid.uuid4()
OTHER = uuid.uuid4()
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


# --- referral status from events, in any order ----------------------------------------


def test_a_later_stage_wins_whatever_the_timestamps() -> None:
    # `attached` (stage 2) arriving before the `accepted` (stage 1) it followed.
    assert not status_supersedes("attached", T0, "accepted", T0 + timedelta(hours=1))
    assert status_supersedes("accepted", T0 + timedelta(hours=1), "withdrawn", T0)
    assert status_supersedes("received", T0, "accepted", None)


def test_within_a_stage_the_later_change_wins() -> None:
    assert status_supersedes("declined", T0, "withdrawn", T0 + timedelta(seconds=1))
    assert not status_supersedes("withdrawn", T0, "declined", T0 - timedelta(seconds=1))
    assert not status_supersedes("accepted", T0, "accepted", T0)  # a redelivery
    # The accepted event carries no time: it never overrides a timed status of its stage.
    assert not status_supersedes("rejected", T0, "accepted", None)
    assert status_supersedes("accepted", None, "accepted", T0)


def test_anything_is_news_about_an_unknown_referral() -> None:
    assert status_supersedes(None, None, "received", T0)


@given(st.permutations(["received", "accepted", "withdrawn"]))
def test_any_delivery_order_ends_on_the_last_status(order: list[str]) -> None:
    times = {"received": T0, "accepted": T0 + timedelta(1), "withdrawn": T0 + timedelta(2)}
    status, at = None, None
    for incoming in order:
        if status_supersedes(status, at, incoming, times[incoming]):
            status, at = incoming, times[incoming]
    assert status == "withdrawn"


def _news(status: str, at: datetime | None, provider: uuid.UUID | None, **extra) -> ReferralNews:
    return ReferralNews(
        REFERRAL_ID, "working-well", provider, "jcp", date(2024, 2, 3), status, at, **extra
    )


REFERRAL_ID = uuid.uuid4()
PERSON = {"given_name": "Ann", "family_name": "Example"}
# One referral's events as the referrals service sends them: `received` before routing,
# the accepted event (person, no change time) and its status change, then later news.
HISTORY = [
    _news("received", T0, None),
    _news("accepted", None, PROVIDER, person=PERSON, circumstances={"housing": "stable"}),
    _news("accepted", T0 + timedelta(minutes=1), PROVIDER),
    _news("attached", T0 + timedelta(days=3), PROVIDER),
    _news("withdrawn", T0 + timedelta(days=9), None),
]


def _fold(news: list[ReferralNews]) -> KnownReferral:
    return merge_all(KnownReferral.first(news[0]), news[1:])


@given(st.permutations(HISTORY), st.lists(st.sampled_from(HISTORY), max_size=4))
def test_merged_news_ends_the_same_whatever_the_order_and_redeliveries(
    order: list[ReferralNews], redelivered: list[ReferralNews]
) -> None:
    # What a batch handler relies on: folding a run gives what one-at-a-time gives.
    assert _fold(order + redelivered) == KnownReferral(
        "withdrawn", T0 + timedelta(days=9), PROVIDER, PERSON, {"housing": "stable"}
    )


def test_news_without_a_provider_never_unroutes_a_referral() -> None:
    known = _fold([HISTORY[2], _news("declined", T0 + timedelta(days=2), None)])
    assert (known.status, known.provider_id) == ("declined", PROVIDER)
    assert known.person is None  # only the accepted event carries the person


def test_stages_cover_every_referral_status_of_the_contract() -> None:
    assert set(REFERRAL_STAGE) == {
        "received",
        "accepted",
        "rejected",
        "duplicate",
        "attached",
        "declined",
        "withdrawn",
    }


def test_a_referral_is_decided_once_routed_or_past_received() -> None:
    assert not referral_decided("received", None)
    assert referral_decided("rejected", None)
    assert referral_decided("accepted", PROVIDER)
    assert referral_decided("received", PROVIDER)


# --- attachment -------------------------------------------------------------------------

REFERRAL = ReferralFacts(uuid.uuid4(), "working-well", PROVIDER, "accepted", date(2024, 2, 3))
REQUEST = Attachment(REFERRAL.referral_id, date(2024, 2, 20), "kw-17")


def decide(referral=REFERRAL, existing=None, request=REQUEST, provider=PROVIDER, asked=None):
    return decide_attachment(provider, request, referral, existing, asked)


def test_an_accepted_referral_routed_here_is_attached() -> None:
    assert decide().outcome is AttachmentOutcome.REQUEST


def test_attached_on_may_equal_referred_on_but_not_precede_it() -> None:
    same_day = replace(REQUEST, attached_on=REFERRAL.referred_on)
    assert decide(request=same_day).outcome is AttachmentOutcome.REQUEST
    early = replace(REQUEST, attached_on=REFERRAL.referred_on - timedelta(days=1))
    decision = decide(request=early)
    assert decision.outcome is AttachmentOutcome.INVALID
    assert decision.field == "attached_on"


@pytest.mark.parametrize(
    "referral",
    [
        None,  # never heard of
        replace(REFERRAL, provider_id=OTHER),  # routed elsewhere
        replace(REFERRAL, provider_id=None, status="rejected"),
        replace(REFERRAL, provider_id=None, status="duplicate"),
        replace(REFERRAL, provider_id=None, status="received"),
    ],
)
def test_not_routed_here_is_not_found(referral) -> None:
    assert decide(referral=referral).outcome is AttachmentOutcome.NOT_FOUND


def test_routed_elsewhere_is_not_found_even_when_withdrawn() -> None:
    referral = replace(REFERRAL, provider_id=OTHER, status="withdrawn")
    assert decide(referral=referral).outcome is AttachmentOutcome.NOT_FOUND


@pytest.mark.parametrize("status", ["withdrawn", "declined", "attached"])
def test_routed_here_but_no_longer_accepted_is_a_conflict(status: str) -> None:
    assert decide(referral=replace(REFERRAL, status=status)).outcome is AttachmentOutcome.CONFLICT


def test_the_same_attachment_again_is_a_retry() -> None:
    existing = ExistingParticipant(uuid.uuid4(), PROVIDER, REQUEST)
    referral = replace(REFERRAL, status="attached")
    assert decide(referral, existing).outcome is AttachmentOutcome.ALREADY_ATTACHED


@pytest.mark.parametrize(
    "request_",
    [replace(REQUEST, attached_on=date(2024, 2, 21)), replace(REQUEST, key_worker="kw-18")],
)
def test_a_different_attachment_of_an_attached_referral_is_a_conflict(request_) -> None:
    existing = ExistingParticipant(uuid.uuid4(), PROVIDER, REQUEST)
    assert decide(existing=existing, request=request_).outcome is AttachmentOutcome.CONFLICT


ASKED = AttachmentRequest(PROVIDER, REQUEST, AttachmentState.REQUESTED)


def test_the_same_attachment_while_referrals_is_asked_waits_for_its_answer() -> None:
    assert decide(asked=ASKED).outcome is AttachmentOutcome.AWAIT


@pytest.mark.parametrize(
    "request_",
    [replace(REQUEST, attached_on=date(2024, 2, 21)), replace(REQUEST, key_worker="kw-18")],
)
def test_a_different_attachment_while_referrals_is_asked_is_a_conflict(request_) -> None:
    decision = decide(request=request_, asked=ASKED)
    assert decision.outcome is AttachmentOutcome.CONFLICT
    assert "being attached" in decision.detail


def test_an_attachment_referrals_refused_is_a_conflict_naming_why() -> None:
    """Refused because the referral was withdrawn first, even while casework's copy of
    the referral still says accepted (the withdrawal's event is on its way)."""
    refused = replace(ASKED, state=AttachmentState.REFUSED, refused_as="withdrawn")
    decision = decide(asked=refused)
    assert decision.outcome is AttachmentOutcome.CONFLICT
    assert "withdrawn" in decision.detail


def test_a_participant_already_created_answers_before_the_request() -> None:
    existing = ExistingParticipant(uuid.uuid4(), PROVIDER, REQUEST)
    granted = replace(ASKED, state=AttachmentState.GRANTED)
    assert decide(existing=existing, asked=granted).outcome is AttachmentOutcome.ALREADY_ATTACHED


# --- exit and episode ends ------------------------------------------------------------


def test_exit_is_recorded_once_and_retries_are_harmless() -> None:
    assert exit_conflict("active", None, None, date(2024, 5, 1), "completed") is None
    assert (
        exit_conflict("exited", date(2024, 5, 1), "completed", date(2024, 5, 1), "completed")
        is None
    )
    assert exit_conflict("exited", date(2024, 5, 1), "completed", date(2024, 5, 2), "completed")
    assert exit_conflict("exited", date(2024, 5, 1), "completed", date(2024, 5, 1), "other")


def test_an_episode_ends_once() -> None:
    assert end_conflict(None, date(2024, 5, 1)) is None
    assert end_conflict(date(2024, 5, 1), date(2024, 5, 1)) is None
    assert end_conflict(date(2024, 5, 1), date(2024, 5, 2))


def test_severe_means_four_to_six() -> None:
    scores = {"housing": 3, "debt": 4, "confidence": 6, "age": 0, "mental_health": 5}
    assert severe_barriers(scores) == ["confidence", "debt", "mental_health"]


def test_the_contract_lists_twenty_barriers() -> None:
    assert len(BARRIER_KEYS) == len(set(BARRIER_KEYS)) == 20


# --- sessions sync --------------------------------------------------------------------

PARTICIPANT = uuid.uuid4()
SCOPES = {PARTICIPANT: ParticipantScope(PROVIDER, date(2024, 2, 3), None)}


def session(**changes) -> SessionRecord:
    base = SessionRecord(
        external_id="k",
        participant_id=PARTICIPANT,
        occurred_at=T0,
        kind="one_to_one",
        duration_minutes=45,
        attendance="attended",
        notes="talked about CV",
        modified_at=T0,
    )
    return base._replace(**changes)


def keyed(external_id: str, record: SessionRecord) -> SessionRecord:
    return record._replace(external_id=external_id)


def test_sync_status_is_last_modified_wins() -> None:
    stored = session()
    assert sync_status(None, stored) == "created"
    assert sync_status(stored, session()) == "unchanged"
    assert sync_status(stored, session(notes="changed")) == "updated"  # same modified_at
    later = T0 + timedelta(minutes=1)
    assert sync_status(stored, session(modified_at=later)) == "updated"  # same content
    earlier = T0 - timedelta(minutes=1)
    assert sync_status(stored, session(notes="older edit", modified_at=earlier)) == "stale"


def test_the_same_instant_in_another_offset_is_unchanged() -> None:
    bst = timezone(timedelta(hours=1))
    again = session(occurred_at=T0.astimezone(bst), modified_at=T0.astimezone(bst))
    assert sync_status(session(), again) == "unchanged"


@pytest.mark.parametrize(
    "change",
    [
        {"participant_id": uuid.uuid4()},
        {"occurred_at": T0 + timedelta(seconds=1)},
        {"kind": "phone"},
        {"duration_minutes": None},
        {"attendance": "did_not_attend"},
        {"notes": None},
    ],
)
def test_every_field_is_content(change) -> None:
    assert sync_status(session(), session(**change)) == "updated"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"occurred_at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
            "occurred_at",
        ),
        ({"modified_at": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))}, "modified_at"),
    ],
)
def test_a_time_past_the_calendar_s_edge_in_utc_is_a_problem(change, field) -> None:
    record = session(attendance="cancelled", **change)
    assert session_problem(record, SCOPES[PARTICIPANT], PROVIDER, NOW) == (
        f"{field}: must fall within the years 0001 to 9999 in UTC"
    )


def test_the_calendar_s_last_hour_in_utc_is_no_problem() -> None:
    last = datetime(9999, 12, 31, 23, tzinfo=UTC)
    record = session(attendance="cancelled", occurred_at=last)
    assert session_problem(record, SCOPES[PARTICIPANT], PROVIDER, NOW) is None


def test_one_batch_gives_all_five_statuses_in_order() -> None:
    stored = {
        "same": session(),
        "edit": session(),
        "old": session(modified_at=T0 + timedelta(hours=1)),
    }
    items = [
        keyed("new", session()),
        keyed("same", session()),
        keyed("edit", session(notes="new notes", modified_at=T0 + timedelta(hours=1))),
        keyed("old", session(notes="older", modified_at=T0)),
        InvalidItem("bad", "kind: Input should be ..."),
    ]
    plan = plan_session_sync(items, stored, SCOPES, PROVIDER, NOW)
    assert [(r.external_id, r.status) for r in plan.results] == [
        ("new", "created"),
        ("same", "unchanged"),
        ("edit", "updated"),
        ("old", "stale"),
        ("bad", "error"),
    ]
    assert plan.results[4].error == "kind: Input should be ..."
    assert set(plan.writes) == {"new", "edit"}
    assert plan.created == {"new"}


def test_repeated_keys_apply_in_order_and_only_the_last_state_is_written() -> None:
    first = session(notes="v1", modified_at=T0)
    second = session(notes="v2", modified_at=T0 + timedelta(minutes=5))
    items = [
        keyed("k", first),
        keyed("k", first),  # repeated delivery
        keyed("k", second),
        keyed("k", first),  # an older version delivered late
    ]
    plan = plan_session_sync(items, {}, SCOPES, PROVIDER, NOW)
    assert [r.status for r in plan.results] == ["created", "unchanged", "updated", "stale"]
    assert plan.writes == {"k": second}
    assert plan.created == {"k"}


def test_another_providers_participant_is_an_error_like_an_unknown_one() -> None:
    stranger = uuid.uuid4()
    theirs = uuid.uuid4()
    scopes = {**SCOPES, theirs: ParticipantScope(OTHER, date(2024, 2, 3), None)}
    items = [
        keyed("a", session(participant_id=stranger)),
        keyed("b", session(participant_id=theirs)),
        keyed("c", session()),
    ]
    plan = plan_session_sync(items, {}, scopes, PROVIDER, NOW)
    assert [r.status for r in plan.results] == ["error", "error", "created"]
    assert plan.results[0].error == plan.results[1].error == "participant_id: no such participant"
    assert set(plan.writes) == {"c"}


def test_session_dates_must_fit_the_participant() -> None:
    scopes = {PARTICIPANT: ParticipantScope(PROVIDER, date(2024, 2, 3), date(2024, 4, 30))}
    items = [
        keyed("before-referral", session(occurred_at=datetime(2024, 2, 2, 12, tzinfo=UTC))),
        keyed("after-exit", session(occurred_at=datetime(2024, 5, 1, 12, tzinfo=UTC))),
        keyed("exit-day", session(occurred_at=datetime(2024, 4, 30, 22, 30, tzinfo=UTC))),
        keyed("future", session(occurred_at=NOW + timedelta(days=1))),
        keyed(
            "future-cancelled",
            session(
                occurred_at=datetime(2024, 4, 29, tzinfo=UTC) + timedelta(days=0),
                attendance="cancelled",
            ),
        ),
        keyed("future-modified", session(modified_at=NOW + timedelta(hours=1))),
    ]
    plan = plan_session_sync(items, {}, scopes, PROVIDER, NOW)
    statuses = {r.external_id: (r.status, r.error) for r in plan.results}
    assert statuses["before-referral"][1].startswith("occurred_at: is before the referral date")
    # 22:30 UTC on 30 April is 23:30 in London (BST): still the exit day.
    assert statuses["exit-day"][0] == "created"
    assert statuses["after-exit"][1].startswith("occurred_at: is after the participant left")
    assert statuses["future"][1].startswith("occurred_at:")
    assert statuses["future-cancelled"][0] == "created"
    assert statuses["future-modified"][1] == "modified_at: is in the future"


def test_a_cancelled_session_may_be_in_the_future() -> None:
    item = keyed("next-week", session(occurred_at=NOW + timedelta(days=7), attendance="cancelled"))
    plan = plan_session_sync([item], {}, SCOPES, PROVIDER, NOW)
    assert plan.results[0].status == "created"


records = st.builds(
    lambda minutes, notes: session(modified_at=T0 + timedelta(minutes=minutes), notes=notes),
    st.integers(0, 5),
    st.sampled_from(["a", "b"]),
)


@given(st.lists(records, min_size=1, max_size=8))
def test_the_stored_state_is_the_latest_modified_whatever_the_order(versions) -> None:
    plan = plan_session_sync([keyed("k", v) for v in versions], {}, SCOPES, PROVIDER, NOW)
    final = plan.writes["k"]
    assert final.modified_at == max(v.modified_at for v in versions)
    # Delivering the same versions again changes nothing.
    again = plan_session_sync(
        [keyed("k", v) for v in versions], {"k": final}, SCOPES, PROVIDER, NOW
    )
    assert all(r.status in ("unchanged", "stale", "updated") for r in again.results)
    assert again.writes.get("k", final).modified_at == final.modified_at


# --- caseload -------------------------------------------------------------------------


def test_days_without_contact_count_from_the_last_attended_session() -> None:
    today = date(2024, 6, 1)
    attached = date(2024, 3, 1)
    last = datetime(2024, 5, 11, 23, 30, tzinfo=UTC)  # 12 May in London (BST)
    assert days_without_contact(last, attached, today) == 20
    assert days_without_contact(None, attached, today) == (today - attached).days
    # A session before attachment does not predate the attachment meeting itself.
    assert days_without_contact(datetime(2024, 2, 1, tzinfo=UTC), attached, today) == 92


def test_no_contact_for_n_days_or_more_is_flagged() -> None:
    assert lacks_contact(21, 21)
    assert not lacks_contact(20, 21)
    assert lacks_contact(0, 0)


def test_business_dates_are_uk_dates() -> None:
    assert uk_date(datetime(2024, 7, 1, 23, 30, tzinfo=UTC)) == date(2024, 7, 2)
    assert uk_date(datetime(2024, 1, 1, 23, 30, tzinfo=UTC)) == date(2024, 1, 1)
    assert uk_today(datetime(2024, 7, 1, 23, 30, tzinfo=UTC)) == date(2024, 7, 2)
