"""The consumer's batch handler for referral status events must leave the projections
exactly as applying the same events one at a time would, in any order of arrival."""

from __future__ import annotations

import uuid

from services.reporting.events import handle, handle_referral_changes
from shared.events.envelope import Envelope, EventPayload, new_envelope
from shared.events.referrals import ReferralStatusChanged
from tests.reporting.programmes import performance_story
from tests.reporting.snapshots import all_reports
from tests.reporting.story import office, reporting

NORTH, SOUTH = uuid.uuid4(), uuid.uuid4()


def _envelopes(events: list[EventPayload]) -> list[Envelope]:
    return [new_envelope(event, producer="tests") for event in events]


async def _one_at_a_time(rep, events: list[EventPayload]) -> None:
    for envelope in _envelopes(events):
        async with rep.runtime.session_factory() as session, session.begin():
            await handle(session, envelope)


async def _in_runs(rep, events: list[EventPayload]) -> None:
    """As the consumer does with a batch: consecutive status events go to the batch
    handler together, everything in one transaction."""
    async with rep.runtime.session_factory() as session, session.begin():
        run: list[Envelope] = []
        for envelope in _envelopes(events):
            if envelope.type == ReferralStatusChanged.event_type:
                run.append(envelope)
                continue
            if run:
                await handle_referral_changes(session, run)
                run = []
            await handle(session, envelope)
        if run:
            await handle_referral_changes(session, run)


async def test_runs_of_status_events_project_as_one_event_at_a_time(apps) -> None:
    rep = await reporting(apps)
    alone = performance_story(north=NORTH, south=SOUTH)
    in_order = performance_story(north=NORTH, south=SOUTH)
    newest_first = performance_story(north=NORTH, south=SOUTH)
    # A run holds several events of one referral (received, accepted, attached), so the
    # batch handler's layering is exercised; newest first, attachments arrive before
    # the referral news they depend on.
    assert any(
        isinstance(a, ReferralStatusChanged)
        and isinstance(b, ReferralStatusChanged)
        and a.referral_id == b.referral_id
        for a, b in zip(in_order.story.events, in_order.story.events[1:], strict=False)
    )
    await _one_at_a_time(rep, alone.story.events)
    await _in_runs(rep, in_order.story.events)
    await _in_runs(rep, list(reversed(newest_first.story.events)))
    async with office(rep) as client:
        expected = await all_reports(client, alone.story.code)
        assert await all_reports(client, in_order.story.code) == expected
        assert await all_reports(client, newest_first.story.code) == expected
    perf = expected["performance/2024-12-31/None/0"]
    keys = ("referrals", "accepted", "attachments", "job_starts")
    assert [perf[0][k] for k in keys] == [7, 5, 4, 3]  # the hand-worked figures
