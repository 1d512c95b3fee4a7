"""The simulator's gateway client against a stand-in gateway on loopback: a real HTTP
server that answers 429s and 502s the way the gateway does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from pathways.sandbox import free_port
from pathways.simulate.client import ApiError, Credentials, Gateway

A = Credentials("a", "jcp", "key-a")
B = Credentials("b", "jcp", "key-b")


class StandIn:
    """Counts calls; answers each path's scripted statuses in turn, then 201."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, api key) in arrival order
        self.arrived = asyncio.Event()
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.app = FastAPI()

        @self.app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @self.app.post("/{name}")
        async def answer(name: str, request: Request) -> Response:
            key = request.headers["authorization"].removeprefix("Bearer ")
            self.seen.append((name, key))
            self.arrived.set()
            script = self.script.get(f"{name}:{key}") or self.script.get(name) or []
            if script:
                status, headers = script.pop(0)
                return Response(
                    b'{"title": "scripted", "status": %d}' % status,
                    status_code=status,
                    headers=headers,
                    media_type="application/problem+json",
                )
            return Response(b'{"ok": true}', status_code=201, media_type="application/json")


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    server_app = StandIn()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(server_app.app, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield server_app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_429_is_waited_out_as_retry_after_says_then_sent_again(stand_in) -> None:
    server, url = stand_in
    server.script["limited"] = [(429, {"Retry-After": "1"})]
    gateway = Gateway(url)
    try:
        assert await gateway.call(A, "POST", "/limited", json={}, expect=(201,)) == {"ok": True}
    finally:
        await gateway.aclose()
    assert server.seen == [("limited", "key-a"), ("limited", "key-a")]
    assert gateway.stats.rate_limited == 1
    assert gateway.stats.calls[("POST", "/limited", 429)] == 1
    assert gateway.stats.calls[("POST", "/limited", 201)] == 1


async def test_one_partners_rate_limit_does_not_hold_up_another(stand_in) -> None:
    server, url = stand_in
    server.script["limited:key-a"] = [(429, {"Retry-After": "2"})]
    gateway = Gateway(url)
    try:
        first = asyncio.create_task(gateway.call(A, "POST", "/limited", json={}, expect=(201,)))
        await server.arrived.wait()
        await gateway.call(B, "POST", "/limited", json={}, expect=(201,))
        await first
    finally:
        await gateway.aclose()
    # B was answered while A waited out its Retry-After.
    assert server.seen == [("limited", "key-a"), ("limited", "key-b"), ("limited", "key-a")]


async def test_a_call_that_may_have_been_applied_is_resent_only_if_idempotent(stand_in) -> None:
    server, url = stand_in
    server.script["claim"] = [(502, {})]
    server.script["referral"] = [(502, {})]
    gateway = Gateway(url)
    try:
        with pytest.raises(ApiError) as refused:
            await gateway.call(A, "POST", "/claim", json={}, expect=(201,))
        assert refused.value.status == 502
        await gateway.call(A, "POST", "/referral", json={}, expect=(201,), idempotent=True)
    finally:
        await gateway.aclose()
    assert server.seen == [("claim", "key-a"), ("referral", "key-a"), ("referral", "key-a")]


async def test_an_unexpected_status_is_an_error_naming_the_route_not_the_body(stand_in) -> None:
    server, url = stand_in
    server.script["x"] = [(409, {})]
    gateway = Gateway(url)
    try:
        with pytest.raises(ApiError) as error:
            await gateway.call(A, "POST", "/x", json={"person": {"family_name": "Taylor"}})
    finally:
        await gateway.aclose()
    assert error.value.status == 409
    assert "Taylor" not in str(error.value)


async def test_health_says_whether_a_gateway_answers(stand_in) -> None:
    _, url = stand_in
    up, down = Gateway(url), Gateway(f"http://127.0.0.1:{free_port()}")
    try:
        assert await up.health() is True
        assert await down.health() is False
    finally:
        await up.aclose()
        await down.aclose()
