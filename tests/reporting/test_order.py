"""Events of one aggregate can arrive in any order, and more than once: the projections
converge to the same figures whatever the order."""

from __future__ import annotations

import random
import uuid

import aio_pika

from tests.reporting.programmes import performance_story
from tests.reporting.snapshots import all_reports
from tests.reporting.story import feed, get_report, office, reporting, row
from tests.support.events import eventually


async def test_any_order_and_repeats_give_the_same_reports(sandbox, apps) -> None:
    rep = await reporting(apps)
    north, south = uuid.uuid4(), uuid.uuid4()
    in_order = performance_story(north=north, south=south)
    newest_first = performance_story(north=north, south=south)
    shuffled = performance_story(north=north, south=south)

    backwards = list(reversed(newest_first.story.events))
    mixed = list(shuffled.story.events) * 2  # every event twice (a producer re-sending)
    random.Random(7).shuffle(mixed)

    await feed(sandbox, rep, in_order.story.events)
    await feed(sandbox, rep, backwards)
    await feed(sandbox, rep, mixed)
    async with office(rep) as client:
        expected = await all_reports(client, in_order.story.code)
        assert await all_reports(client, newest_first.story.code) == expected
        assert await all_reports(client, shuffled.story.code) == expected
        # and they are the hand-worked figures
        assert (
            row(await get_report(client, "performance", in_order.story.code, as_of="2024-12-31"))[
                "accrued_pence"
            ]
            == 490000
        )


async def test_redelivered_envelopes_are_applied_once(sandbox, apps) -> None:
    rep = await reporting(apps)
    built = performance_story()
    envelopes = await feed(sandbox, rep, built.story.events)
    duplicates_before = _duplicates(rep)
    # The broker redelivers some of the very same envelopes (same event ids).
    again = envelopes[::3]
    connection = await aio_pika.connect(sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("pathways.events")
        for envelope in again:
            await exchange.publish(
                aio_pika.Message(body=envelope.to_bytes(), message_id=str(envelope.event_id)),
                routing_key=envelope.type,
            )

    async def all_recognised() -> None:
        assert _duplicates(rep) - duplicates_before == len(again)

    await eventually(all_recognised)
    async with office(rep) as client:
        report = await get_report(client, "performance", built.story.code, as_of="2024-12-31")
    assert (row(report)["referrals"], row(report)["accrued_pence"]) == (7, 490000)


def _duplicates(rep) -> float:
    total = 0.0
    for metric in rep.runtime.metrics.events_consumed.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") == "duplicate":
                total += sample.value
    return total
