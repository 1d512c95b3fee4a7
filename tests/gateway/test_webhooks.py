"""Webhooks (contract §9) against a real little HTTP server on loopback: subscriptions,
Standard Webhooks signatures, at-least-once delivery with backoff, order per referral,
survival across a gateway restart, and the failed-deliveries view."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from pathways.sandbox import Sandbox
from services.gateway import store
from services.gateway.webhooks import WebhookDispatcher
from shared.events.envelope import new_envelope
from shared.events.referrals import ReferralStatusChanged
from tests.gateway.harness import (
    FAST_WEBHOOKS,
    GatewayUnderTest,
    Received,
    Receiver,
    Server,
    gateway_settings,
)
from tests.support.events import eventually, publish
from tests.support.gateway import Partner
from tests.support.tasks import assert_stops_if_cancelled_as_woken

CONTRACT_FIELDS = {"event_id", "type", "occurred_at", "referral_id", "external_ref", "status"}


def status_changed(
    referral_id: uuid.UUID,
    status: str,
    *,
    referrer: Partner,
    provider: Partner | None = None,
    at: datetime | None = None,
    external_ref: str = "JCP-000123",
    previous: str | None = None,
    sequence: int | None = None,
) -> ReferralStatusChanged:
    at = at or datetime.now(UTC)
    return ReferralStatusChanged(
        referral_id=referral_id,
        external_ref=external_ref,
        programme="working-well",
        source="jcp",
        referrer_id=uuid.UUID(referrer.id),
        provider_id=uuid.UUID(provider.id) if provider else None,
        status=status,
        previous_status=previous,
        reasons=[],
        duplicate_of=None,
        referred_on=at.date(),
        local_authority="Wigan",
        benefit="ESA",
        gender="female",
        age_band="35-49",
        changed_at=at,
        sequence=sequence,
    )


class Hooks:
    """Start gateways (with consumer and dispatcher), subscribe partners to a receiver,
    and tidy up: every subscription made is deleted at the end, so nothing a test
    leaves behind keeps being retried in the next."""

    def __init__(self, sandbox: Sandbox, echo: Server, receiver: Receiver) -> None:
        self.sandbox = sandbox
        self.echo = echo
        self.receiver = receiver
        self.gateways: list[GatewayUnderTest] = []
        self.subscriptions: list[tuple[Partner, str]] = []

    async def gateway(self, **overrides: Any) -> GatewayUnderTest:
        settings = gateway_settings(
            self.sandbox, upstream=self.echo.url, **{**FAST_WEBHOOKS, **overrides}
        )
        gateway = await GatewayUnderTest(self.sandbox, settings).start()
        self.gateways.append(gateway)
        return gateway

    async def subscribe(self, gateway: GatewayUnderTest, partner: Partner, path: str) -> dict:
        async with gateway.client(partner.api_key) as client:
            response = await client.post(
                "/v1/webhooks",
                json={"url": self.receiver.url + path, "events": ["referral.status_changed"]},
            )
        assert response.status_code == 201, response.text
        created = response.json()
        self.subscriptions.append((partner, created["id"]))
        return created

    async def deliveries(
        self, gateway: GatewayUnderTest, partner: Partner, webhook_id: str, **params: str
    ) -> list[dict]:
        async with gateway.client(partner.api_key) as client:
            response = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def close(self) -> None:
        running = [g for g in self.gateways if g.server._task is not None]
        if running:
            for partner, webhook_id in self.subscriptions:
                async with running[0].client(partner.api_key) as client:
                    await client.delete(f"/v1/webhooks/{webhook_id}")
        for gateway in running:
            await gateway.stop()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def hooks(gw_sandbox: Sandbox, echo: Server, receiver: Receiver) -> AsyncIterator[Hooks]:
    helper = Hooks(gw_sandbox, echo, receiver)
    try:
        yield helper
    finally:
        await helper.close()


def verified(received: Received, secret: str) -> dict:
    """The payload, if (and only if) its Standard Webhooks signature verifies."""
    return Webhook(secret).verify(received.body, received.headers)


# --------------------------------------------------------------------------------------
# Subscriptions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/pathways",  # https only
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://crm/hook",
        "https://printer.local/hook",
        "https://user:password@hooks.example.org/hook",
        "ftp://hooks.example.org/hook",
        "not a url",
        "https://",
        "https://hooks.example.org:99999/hook",
        "https://hooks.example.org/hook#fragment",
        "https://hooks.example.org/" + "a" * 2100,
        "",
    ],
)
async def test_webhook_targets_must_be_public_https_urls(
    gateway: GatewayUnderTest, url: str
) -> None:
    partner = await gateway.partner("jcp")
    async with gateway.client(partner.api_key) as client:
        response = await client.post(
            "/v1/webhooks", json={"url": url, "events": ["referral.status_changed"]}
        )
        assert response.status_code == 422, (url, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["url"]
        assert (await client.get("/v1/webhooks")).json()["items"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"url": "https://hooks.example.org/x", "events": []}, "events"),
        ({"url": "https://hooks.example.org/x", "events": ["referral.created"]}, "events[0]"),
        ({"url": "https://hooks.example.org/x"}, "events"),
        ({"events": ["referral.status_changed"]}, "url"),
        ({"url": 42, "events": ["referral.status_changed"]}, "url"),
        (
            {"url": "https://hooks.example.org/x", "events": ["referral.status_changed"], "x": 1},
            "x",
        ),
    ],
)
async def test_a_malformed_subscription_is_422_naming_the_field(
    gateway: GatewayUnderTest, body: dict, field: str
) -> None:
    partner = await gateway.partner("provider")
    async with gateway.client(partner.api_key) as client:
        response = await client.post("/v1/webhooks", json=body)
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]
        assert (await client.get("/v1/webhooks")).json()["items"] == []


async def test_subscriptions_are_a_partners_own(gateway: GatewayUnderTest) -> None:
    owner, stranger = await gateway.partner("provider"), await gateway.partner("provider")
    async with gateway.client(owner.api_key) as client:
        response = await client.post(
            "/v1/webhooks",
            json={
                "url": "https://hooks.example.org/pathways",
                "events": ["referral.status_changed", "referral.status_changed"],
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["secret"].startswith("whsec_")
        assert created["events"] == ["referral.status_changed"]
        assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
        listed = (await client.get("/v1/webhooks")).json()["items"]
        assert [w["id"] for w in listed] == [created["id"]]
        assert "secret" not in listed[0]  # shown once
    async with gateway.client(stranger.api_key) as client:
        assert (await client.get("/v1/webhooks")).json()["items"] == []
        assert (await client.get(f"/v1/webhooks/{created['id']}/deliveries")).status_code == 404
        assert (await client.delete(f"/v1/webhooks/{created['id']}")).status_code == 404
    async with gateway.client(owner.api_key) as client:
        assert (await client.delete(f"/v1/webhooks/{created['id']}")).status_code == 204
        assert (await client.delete(f"/v1/webhooks/{created['id']}")).status_code == 404
        assert (await client.get("/v1/webhooks")).json()["items"] == []
        # An id that is not even a UUID names nothing the partner may see (§1).
        for malformed in (
            client.delete("/v1/webhooks/not-an-id"),
            client.get("/v1/webhooks/not-an-id/deliveries"),
        ):
            response = await malformed
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_partner_has_a_bounded_number_of_subscriptions(
    gateway: GatewayUnderTest,
) -> None:
    partner = await gateway.partner("treatment")
    limit = gateway.settings.webhook_max_subscriptions
    body = {"url": "https://hooks.example.org/p", "events": ["referral.status_changed"]}
    async with gateway.client(partner.api_key) as client:
        made = await asyncio.gather(*(client.post("/v1/webhooks", json=body) for _ in range(limit)))
        assert [r.status_code for r in made] == [201] * limit
        refused = await client.post("/v1/webhooks", json=body)
        assert refused.status_code == 409
        assert len((await client.get("/v1/webhooks")).json()["items"]) == limit


# --------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------


async def test_a_status_change_reaches_every_partner_that_can_see_the_referral_signed(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway()
    referrer, provider = await gateway.partner("jcp"), await gateway.partner("provider")
    office = await gateway.partner("programme_office")
    other_provider, other_referrer = await gateway.partner("provider"), await gateway.partner("jcp")
    subs = {
        "referrer": await hooks.subscribe(gateway, referrer, "/referrer"),
        "provider": await hooks.subscribe(gateway, provider, "/provider"),
        "office": await hooks.subscribe(gateway, office, "/office"),
        "other-provider": await hooks.subscribe(gateway, other_provider, "/other-provider"),
        "other-referrer": await hooks.subscribe(gateway, other_referrer, "/other-referrer"),
    }
    referral = uuid.uuid4()
    at = datetime(2024, 2, 3, 10, 0, tzinfo=UTC)
    [envelope] = await publish(
        hooks.sandbox,
        status_changed(referral, "accepted", referrer=referrer, provider=provider, at=at),
    )

    async def three_arrived() -> None:
        assert len(receiver.for_referral(str(referral))) == 3

    await eventually(three_arrived)
    for name in ("referrer", "provider", "office"):
        [got] = receiver.for_referral(str(referral), f"/{name}")
        payload = verified(got, subs[name]["secret"])
        assert set(payload) == CONTRACT_FIELDS
        assert payload == {
            "event_id": str(envelope.event_id),
            "type": "referral.status_changed",
            "occurred_at": at.isoformat(),
            "referral_id": str(referral),
            "external_ref": "JCP-000123",
            "status": "accepted",
        }
        assert got.headers["webhook-id"] == str(envelope.event_id)
        assert got.headers["content-type"] == "application/json"
        # Signed with this subscription's secret, and no other's.
        with pytest.raises(Exception, match="signature"):
            other = "office" if name != "office" else "provider"
            Webhook(subs[other]["secret"]).verify(got.body, got.headers)
    # Partners that cannot see the referral have nothing queued at all.
    async with gateway.runtime.engine.connect() as conn:
        queued = (
            await conn.execute(
                select(store.webhook_deliveries.c.subscription_id).where(
                    store.webhook_deliveries.c.referral_id == referral
                )
            )
        ).scalars()
        queued_for = {str(s) for s in queued}
    # (Programme-office partners other tests made may have deliveries queued too.)
    assert {subs[n]["id"] for n in ("referrer", "provider", "office")} <= queued_for
    assert not {subs[n]["id"] for n in ("other-provider", "other-referrer")} & queued_for
    assert not receiver.for_referral(str(referral), "/other-provider")
    [delivery] = await hooks.deliveries(gateway, referrer, subs["referrer"]["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["event_id"] == str(envelope.event_id)


async def test_a_referral_not_routed_to_a_provider_reaches_its_referrer_and_the_office(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway()
    referrer, office = await gateway.partner("probation"), await gateway.partner("programme_office")
    await hooks.subscribe(gateway, referrer, "/referrer")
    await hooks.subscribe(gateway, office, "/office")
    referral = uuid.uuid4()
    await publish(
        hooks.sandbox,
        status_changed(
            referral, "rejected", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )

    async def both() -> None:
        assert sorted(r.path for r in receiver.for_referral(str(referral))) == [
            "/office",
            "/referrer",
        ]

    await eventually(both)


async def test_a_partner_whose_keys_are_all_revoked_hears_nothing_more(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway()
    referrer = await gateway.partner("jcp")
    office = await gateway.partner("programme_office")
    await hooks.subscribe(gateway, referrer, "/locked-out")
    await hooks.subscribe(gateway, office, "/office")
    keys = await gateway.admin.admin.get(f"/admin/partners/{referrer.id}/keys")
    for key in keys.json()["items"]:
        await gateway.admin.admin.post(f"/admin/partners/{referrer.id}/keys/{key['id']}/revoke")
    referral = uuid.uuid4()
    await publish(hooks.sandbox, status_changed(referral, "received", referrer=referrer))

    async def office_told() -> None:
        assert receiver.for_referral(str(referral), "/office")

    await eventually(office_told)
    async with gateway.runtime.engine.connect() as conn:
        queued = (
            (
                await conn.execute(
                    select(store.webhook_subscriptions.c.partner_id)
                    .join(
                        store.webhook_deliveries,
                        store.webhook_deliveries.c.subscription_id
                        == store.webhook_subscriptions.c.id,
                    )
                    .where(store.webhook_deliveries.c.referral_id == referral)
                )
            )
            .scalars()
            .all()
        )
    assert uuid.UUID(referrer.id) not in queued


async def test_failed_attempts_are_retried_with_backoff_until_delivered(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway()
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/flaky")
    answers = iter([500, 503, 429])
    receiver.answer = lambda _r: next(answers, 204)
    referral = uuid.uuid4()
    await publish(
        hooks.sandbox,
        status_changed(
            referral, "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )

    async def delivered() -> None:
        items = await hooks.deliveries(gateway, referrer, sub["id"])
        assert [d["status"] for d in items] == ["delivered"]

    await eventually(delivered)
    attempts = receiver.for_referral(str(referral))
    assert len(attempts) == 4
    # The same message each time (same id, same body), each attempt freshly signed.
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    for attempt in attempts:
        verified(attempt, sub["secret"])
    [d] = await hooks.deliveries(gateway, referrer, sub["id"])
    assert (d["attempts"], d["last_status_code"], d["last_error"]) == (4, 204, None)


async def test_a_retrying_delivery_shows_when_it_will_be_tried_next(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway(
        webhook_retry_base_seconds=5.0, webhook_retry_max_delay_seconds=60
    )
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/down")
    receiver.answer = lambda _r: 500
    await publish(
        hooks.sandbox,
        status_changed(
            uuid.uuid4(), "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )

    async def retrying() -> None:
        items = await hooks.deliveries(gateway, referrer, sub["id"], status="retrying")
        assert len(items) == 1 and items[0]["attempts"] == 1

    await eventually(retrying)
    [d] = await hooks.deliveries(gateway, referrer, sub["id"])
    assert d["last_status_code"] == 500 and d["last_error"] == "answered HTTP 500"
    wait = datetime.fromisoformat(d["next_attempt_at"]) - datetime.fromisoformat(
        d["last_attempt_at"]
    )
    # The first retry waits the base delay, give or take its 20% jitter.
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)


async def test_a_delivery_that_keeps_failing_is_marked_failed_and_listed(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway(webhook_retry_for_seconds=1.0)
    referrer = await gateway.partner("treatment")
    sub = await hooks.subscribe(gateway, referrer, "/broken")
    referral = uuid.uuid4()
    receiver.answer = lambda r: 500 if r.json["status"] == "received" else 204
    now = datetime.now(UTC)
    await publish(
        hooks.sandbox,
        status_changed(referral, "received", referrer=referrer, provider=None, at=now),
        status_changed(
            referral, "withdrawn", referrer=referrer, provider=None, at=now + timedelta(seconds=1)
        ),
    )

    async def gave_up() -> None:
        failed = await hooks.deliveries(gateway, referrer, sub["id"], status="failed")
        assert len(failed) == 1

    await eventually(gave_up)
    [failed] = await hooks.deliveries(gateway, referrer, sub["id"], status="failed")
    assert failed["referral_id"] == str(referral)
    assert failed["last_status_code"] == 500 and failed["attempts"] >= 1
    assert failed["next_attempt_at"] is None

    # Once the earlier one is given up, the referral's later change goes ahead.
    async def later_delivered() -> None:
        assert [r.json["status"] for r in receiver.received if r.json["status"] == "withdrawn"]

    await eventually(later_delivered)
    statuses = [r.json["status"] for r in receiver.for_referral(str(referral))]
    assert statuses.index("withdrawn") == len(statuses) - 1  # after every earlier attempt
    assert [d["status"] for d in await hooks.deliveries(gateway, referrer, sub["id"])] == [
        "delivered",
        "failed",
    ]


async def test_a_delivery_held_behind_a_failing_one_is_retried_for_a_whole_period_of_its_own(
    hooks: Hooks, receiver: Receiver
) -> None:
    """The retry period runs from a delivery's own first attempt, not from when it was
    queued: a referral's later change waits while an earlier one is retried, so by the
    time the earlier one is given up the later one has been queued a whole period, and
    measured from then it would be given up after a single attempt."""
    period = 2.0
    gateway = await hooks.gateway(webhook_retry_for_seconds=period)
    referrer, provider = await gateway.partner("jcp"), await gateway.partner("provider")
    sub = await hooks.subscribe(gateway, referrer, "/down-for-a-while")
    referral = uuid.uuid4()

    def answer(request: Received) -> int:
        # The partner's system is down all through "received"'s retries and for the
        # first two attempts of "accepted", then back.
        accepted_tries = [
            r for r in receiver.for_referral(str(referral)) if r.json["status"] == "accepted"
        ]
        return 204 if len(accepted_tries) > 2 else 500

    receiver.answer = answer
    t = datetime.now(UTC)
    received, accepted = await publish(
        hooks.sandbox,
        status_changed(referral, "received", referrer=referrer, at=t, sequence=1),
        status_changed(
            referral,
            "accepted",
            referrer=referrer,
            provider=provider,
            at=t + timedelta(seconds=1),
            sequence=2,
        ),
    )

    async def both_settled() -> dict[str, dict]:
        items = await hooks.deliveries(gateway, referrer, sub["id"])
        assert len(items) == 2
        assert not {d["status"] for d in items} & set(store.OPEN_STATUSES), items
        return {d["event_id"]: d for d in items}

    settled = await eventually(both_settled, timeout=15)
    gave_up, held = settled[str(received.event_id)], settled[str(accepted.event_id)]
    assert gave_up["status"] == "failed" and gave_up["attempts"] >= 2, gave_up
    assert (held["status"], held["attempts"], held["last_status_code"]) == (
        "delivered",
        3,
        204,
    ), held
    statuses = [r.json["status"] for r in receiver.for_referral(str(referral))]
    first_accepted = statuses.index("accepted")
    assert set(statuses[:first_accepted]) == {"received"}
    assert statuses[first_accepted:] == ["accepted"] * 3
    # Each period is counted from that delivery's own first attempt: "received" was
    # tried for all of its own, and "accepted" was first tried only once it was over.
    async with gateway.runtime.engine.connect() as conn:
        rows = {
            row.event_id: row
            for row in await conn.execute(
                select(
                    store.webhook_deliveries.c.event_id,
                    store.webhook_deliveries.c.first_attempted_at,
                    store.webhook_deliveries.c.last_attempt_at,
                ).where(
                    store.webhook_deliveries.c.subscription_id == uuid.UUID(sub["id"]),
                    store.webhook_deliveries.c.referral_id == referral,
                )
            )
        }
    earlier, later = rows[received.event_id], rows[accepted.event_id]
    assert earlier.last_attempt_at - earlier.first_attempted_at >= timedelta(seconds=period)
    assert later.first_attempted_at >= earlier.last_attempt_at


async def test_deliveries_for_one_referral_arrive_in_order_without_blocking_others(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway()
    referrer, provider = await gateway.partner("jcp"), await gateway.partner("provider")
    sub = await hooks.subscribe(gateway, referrer, "/ordered")
    slow, other = uuid.uuid4(), uuid.uuid4()

    def answer(request: Received) -> int:
        # The slow referral's first change fails at least once, and until the other
        # referral got through: were the other held up behind it, neither would ever
        # complete and this test would time out.
        body = request.json
        if body["referral_id"] == str(slow) and body["status"] == "received":
            tries = len(receiver.for_referral(str(slow)))
            return 204 if tries > 1 and receiver.for_referral(str(other)) else 503
        return 204

    receiver.answer = answer
    t = datetime.now(UTC)
    await publish(
        hooks.sandbox,
        status_changed(slow, "received", referrer=referrer, provider=None, at=t),
        status_changed(
            slow, "accepted", referrer=referrer, provider=provider, at=t + timedelta(seconds=1)
        ),
        status_changed(
            slow, "attached", referrer=referrer, provider=provider, at=t + timedelta(seconds=2)
        ),
        status_changed(other, "received", referrer=referrer, provider=None, at=t),
    )

    async def all_arrived() -> None:
        delivered = [r.json["status"] for r in receiver.for_referral(str(slow))]
        assert delivered[-3:] == ["received", "accepted", "attached"]

    await eventually(all_arrived)
    slow_statuses = [r.json["status"] for r in receiver.for_referral(str(slow))]
    # Nothing later was sent while "received" was still failing.
    first_accepted = slow_statuses.index("accepted")
    assert set(slow_statuses[:first_accepted]) == {"received"} and first_accepted >= 2
    assert slow_statuses[first_accepted:] == ["accepted", "attached"]
    # The other referral was not held up behind it.
    first_other = next(
        i for i, r in enumerate(receiver.received) if r.json["referral_id"] == str(other)
    )
    first_slow_success = max(
        i
        for i, r in enumerate(receiver.received)
        if r.json["referral_id"] == str(slow) and r.json["status"] == "received"
    )
    assert first_other < first_slow_success
    items = await hooks.deliveries(gateway, referrer, sub["id"], status="delivered")
    assert len(items) == 4


async def test_changes_made_at_one_instant_arrive_in_the_referrals_order(
    hooks: Hooks, receiver: Receiver
) -> None:
    # Received and accepted at once share occurred_at. The event ids are chosen so that
    # ordering by them (as before the sequence was carried) sends "accepted" first.
    first = await hooks.gateway()
    referrer, provider = await first.partner("jcp"), await first.partner("provider")
    sub = await hooks.subscribe(first, referrer, "/instant")
    await first.stop()  # so the gateway takes every change in one batch when it starts
    referrals = [uuid.uuid4() for _ in range(5)]
    t = datetime.now(UTC)
    envelopes = []
    for referral in referrals:
        later_id, earlier_id = sorted((uuid.uuid4(), uuid.uuid4()), reverse=True)
        received = status_changed(referral, "received", referrer=referrer, at=t, sequence=1)
        accepted = status_changed(
            referral, "accepted", referrer=referrer, provider=provider, at=t, sequence=2
        )
        envelopes += [
            new_envelope(received, producer="referrals").model_copy(update={"event_id": later_id}),
            new_envelope(accepted, producer="referrals").model_copy(
                update={"event_id": earlier_id}
            ),
        ]
    await publish(hooks.sandbox, *envelopes)
    second = await hooks.gateway()

    async def all_delivered() -> None:
        items = await hooks.deliveries(second, referrer, sub["id"], status="delivered")
        assert len(items) == 2 * len(referrals)

    await eventually(all_delivered)
    for referral in referrals:
        statuses = [r.json["status"] for r in receiver.for_referral(str(referral))]
        assert statuses == ["received", "accepted"], referral


async def test_queued_deliveries_survive_a_gateway_restart(
    hooks: Hooks, receiver: Receiver
) -> None:
    first = await hooks.gateway()
    referrer = await first.partner("jcp")
    sub = await hooks.subscribe(first, referrer, "/restart")
    referral = uuid.uuid4()
    receiver.answer = lambda _r: 503  # the partner's system is down for now
    t = datetime.now(UTC)
    await publish(
        hooks.sandbox,
        status_changed(referral, "received", referrer=referrer, provider=None, at=t),
    )

    async def tried() -> None:
        assert receiver.for_referral(str(referral))

    await eventually(tried)
    await first.stop()
    # While no gateway runs, the referral moves on: the event waits in RabbitMQ.
    await publish(
        hooks.sandbox,
        status_changed(
            referral, "withdrawn", referrer=referrer, provider=None, at=t + timedelta(seconds=1)
        ),
    )
    receiver.answer = lambda _r: 204  # the partner is back
    second = await hooks.gateway()

    async def both_delivered() -> None:
        statuses = [d["status"] for d in await hooks.deliveries(second, referrer, sub["id"])]
        assert statuses == ["delivered", "delivered"]

    await eventually(both_delivered)
    successes = [r.json["status"] for r in receiver.for_referral(str(referral))]
    assert successes[-2:] == ["received", "withdrawn"]


async def test_a_slow_receiver_counts_as_a_failure_and_is_retried(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway(webhook_timeout_seconds=1.0)
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/slow")
    answers = iter([("sleep", 4.0)])
    receiver.answer = lambda _r: next(answers, 204)
    await publish(
        hooks.sandbox,
        status_changed(
            uuid.uuid4(), "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )

    async def delivered() -> None:
        items = await hooks.deliveries(gateway, referrer, sub["id"], status="delivered")
        assert len(items) == 1 and items[0]["attempts"] >= 2

    await eventually(delivered)


async def test_redirects_are_not_followed(hooks: Hooks, receiver: Receiver) -> None:
    gateway = await hooks.gateway(webhook_retry_base_seconds=10.0)
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/moved")
    receiver.answer = lambda _r: 302
    await publish(
        hooks.sandbox,
        status_changed(
            uuid.uuid4(), "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )

    async def retrying() -> None:
        items = await hooks.deliveries(gateway, referrer, sub["id"], status="retrying")
        assert len(items) == 1 and items[0]["last_error"] == "answered HTTP 302"

    await eventually(retrying)
    assert len(receiver.received) == 1  # the Location was not visited


async def test_deleting_a_subscription_cancels_its_open_deliveries(
    hooks: Hooks, receiver: Receiver
) -> None:
    gateway = await hooks.gateway(webhook_retry_base_seconds=0.2)
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/gone")
    receiver.answer = lambda _r: 500
    referral = uuid.uuid4()
    await publish(
        hooks.sandbox,
        status_changed(
            referral, "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
    )
    await eventually(lambda: _some(receiver, referral))
    async with gateway.client(referrer.api_key) as client:
        assert (await client.delete(f"/v1/webhooks/{sub['id']}")).status_code == 204
    async with gateway.runtime.engine.connect() as conn:
        statuses = (
            (
                await conn.execute(
                    select(store.webhook_deliveries.c.status).where(
                        store.webhook_deliveries.c.referral_id == referral,
                        store.webhook_deliveries.c.subscription_id == uuid.UUID(sub["id"]),
                    )
                )
            )
            .scalars()
            .all()
        )
    assert statuses == ["cancelled"]


async def _some(receiver: Receiver, referral: uuid.UUID) -> None:
    assert receiver.for_referral(str(referral))


async def test_a_redelivered_event_is_delivered_once(hooks: Hooks, receiver: Receiver) -> None:
    gateway = await hooks.gateway()
    referrer = await gateway.partner("jcp")
    sub = await hooks.subscribe(gateway, referrer, "/once")
    referral = uuid.uuid4()
    envelope = new_envelope(
        status_changed(
            referral, "received", referrer=referrer, provider=None, at=datetime.now(UTC)
        ),
        producer="referrals",
    )
    connection = await aio_pika.connect(hooks.sandbox.config.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "pathways.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        for _ in range(2):  # the broker delivers it twice (at least once)
            await exchange.publish(
                aio_pika.Message(body=envelope.to_bytes(), message_id=str(envelope.event_id)),
                routing_key=envelope.type,
            )
    await eventually(lambda: _some(receiver, referral))
    await asyncio.sleep(0.5)
    assert len(receiver.for_referral(str(referral))) == 1
    assert len(await hooks.deliveries(gateway, referrer, sub["id"])) == 1


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
    gw_sandbox: Sandbox,
) -> None:
    """A hostname was public when subscribed; what it resolves to is checked each time."""
    settings = gateway_settings(gw_sandbox)  # production rules: no private targets
    dispatcher = WebhookDispatcher(engine=None, settings=settings, metrics=None)  # type: ignore[arg-type]
    try:
        host = socket.gethostname()
        addresses = {info[4][0] for info in socket.getaddrinfo(host, 443)}
        assert addresses, host
        problem = await dispatcher._target_problem(f"https://{host}/hook")
        assert problem == "target resolves to a private address"
        assert await dispatcher._target_problem("https://93.184.215.14/hook") is None
    finally:
        await dispatcher.client.aclose()


async def test_a_dispatcher_stopped_just_as_a_delivery_finishes_stops(hooks: Hooks) -> None:
    """Shutdown must not hang on the dispatcher: a cancel landing in the same moment as
    its wake-up (a delivery finishing) still stops it."""
    gateway = await hooks.gateway(run_webhook_dispatcher=False, webhook_poll_seconds=30)
    dispatcher: WebhookDispatcher = gateway.runtime.extras["webhooks"]
    running = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.3)  # it has found nothing due and sleeps until woken
    await assert_stops_if_cancelled_as_woken(running, dispatcher.wake, "the dispatcher")


async def test_a_delivery_finishing_during_a_claim_sends_its_referral_s_next_at_once(
    hooks: Hooks, receiver: Receiver
) -> None:
    """The wake-up of a delivery that finishes while the dispatcher is claiming must not
    be lost: the referral's next change goes straight after, not at the next poll (half a
    minute here)."""
    gateway = await hooks.gateway(run_webhook_dispatcher=False, webhook_poll_seconds=30)
    dispatcher: WebhookDispatcher = gateway.runtime.extras["webhooks"]
    referrer, provider = await gateway.partner("jcp"), await gateway.partner("provider")
    sub = await hooks.subscribe(gateway, referrer, "/next")
    referral, t = uuid.uuid4(), datetime.now(UTC)
    await publish(
        hooks.sandbox,
        status_changed(referral, "received", referrer=referrer, provider=None, at=t),
        status_changed(
            referral, "accepted", referrer=referrer, provider=provider, at=t + timedelta(seconds=1)
        ),
    )

    async def both_queued() -> None:
        assert len(await hooks.deliveries(gateway, referrer, sub["id"])) == 2

    await eventually(both_queued)
    # "received" takes a moment to answer, so the dispatcher's next claim runs while it
    # is still out.
    receiver.answer = lambda r: ("sleep", 0.5) if r.json["status"] == "received" else 204
    real_claim = dispatcher.claim

    async def claim_outlived_by_the_delivery_before(limit: int) -> list:
        claimed = await real_claim(limit)
        if not claimed and dispatcher._in_flight:
            # "received" is out, so "accepted" is not due yet: let "received" finish
            # (and wake the dispatcher) before this claim returns.
            await asyncio.gather(*dispatcher._in_flight.values(), return_exceptions=True)
        return claimed

    dispatcher.claim = claim_outlived_by_the_delivery_before  # type: ignore[method-assign]
    running = asyncio.create_task(dispatcher.run())
    try:

        async def both_arrived() -> None:
            statuses = [r.json["status"] for r in receiver.for_referral(str(referral))]
            assert statuses == ["received", "accepted"]

        await eventually(both_arrived, timeout=10)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
