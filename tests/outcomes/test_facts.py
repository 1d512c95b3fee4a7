"""Facts arrive by events in any order and possibly more than once (CONTRIBUTING §Events):
the outcomes service keeps the newest state of each and applies each event once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from services.outcomes import store
from tests.outcomes.world import World, publish_at, republish
from tests.support.events import eventually, publish

pytestmark = pytest.mark.asyncio


async def _episode(world: World, episode_id: uuid.UUID):
    async with world.app.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(store.employment_episodes).where(
                    store.employment_episodes.c.episode_id == episode_id
                )
            )
        ).first()


async def test_an_older_episode_state_arriving_late_changes_nothing(world: World) -> None:
    participant = await world.attach()
    episode = uuid.uuid4()
    now = datetime.now(UTC)
    ended = world.employment_event(
        participant, date(2024, 5, 1), date(2024, 6, 30), episode_id=episode
    )
    started = world.employment_event(participant, date(2024, 5, 1), episode_id=episode)
    await publish_at(world.sandbox, ended, now)
    await world.until_stored_episode(episode)
    # The "started" event (older) is retried after the "ended" one.
    await publish_at(world.sandbox, started, now - timedelta(minutes=5))
    marker = await world.attach()  # handled after the retry: the queue is in order
    await world.until_stored_participant(marker)
    stored = await _episode(world, episode)
    assert stored.ended_on == date(2024, 6, 30)

    # A newer state (a corrected end date) does replace it.
    corrected = world.employment_event(
        participant, date(2024, 5, 1), date(2024, 7, 31), episode_id=episode
    )
    await publish_at(world.sandbox, corrected, now + timedelta(minutes=1))

    async def updated() -> None:
        assert (await _episode(world, episode)).ended_on == date(2024, 7, 31)

    await eventually(updated)


async def test_a_redelivered_attachment_or_programme_is_applied_once(world: World) -> None:
    event = world.attachment_event()
    envelopes = await publish(world.sandbox, event)
    await world.until_stored_participant(event.participant_id)
    # The very same envelope again (the broker redelivers it): the inbox knows it.
    await republish(world.sandbox, envelopes[0])
    await world.define_programme(wait=False)  # a programme defined twice
    marker = await world.attach()
    await world.until_stored_participant(marker)
    async with world.app.runtime.engine.connect() as conn:
        lines = (
            await conn.execute(
                select(store.ledger_lines).where(
                    store.ledger_lines.c.participant_id == event.participant_id
                )
            )
        ).all()
    assert len(lines) == 1
