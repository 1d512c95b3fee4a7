"""The gateway's HTTP/1.1 client to the services, against real servers on loopback:
keep-alive reuse, services that close connections, bodies framed every legal way,
broken services, and a full pool."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.gateway.upstream import Timeouts, UpstreamError, UpstreamPool
from tests.gateway.harness import Server

FAST = Timeouts(connect=1.0, read=1.0, write=1.0, pool=0.5)


async def _app(scope: dict, receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":
        return
    request = Request(scope, receive)
    body = await request.body()
    path = scope["path"]
    if path == "/sleep":
        await asyncio.sleep(float(request.query_params.get("s", "0.3")))
    if path == "/stream":

        async def parts() -> AsyncIterator[bytes]:
            for i in range(50):
                yield f"part-{i};".encode()

        response: Response = StreamingResponse(parts())
    elif path == "/empty":
        response = Response(status_code=204)
    else:
        response = Response(
            b"echo:" + body, headers={"x-method": request.method, "x-len": str(len(body))}
        )
    await response(scope, receive, send)


@pytest_asyncio.fixture(scope="module")
async def service() -> AsyncIterator[Server]:
    server = await Server(_app).start()
    try:
        yield server
    finally:
        await server.stop()


def _pool(port: int, **kwargs) -> UpstreamPool:
    return UpstreamPool(
        "127.0.0.1", port, timeouts=kwargs.pop("timeouts", FAST), max_connections=4, **kwargs
    )


async def _call(
    pool: UpstreamPool, method: bytes = b"GET", target: bytes = b"/", body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"host", b"test"), (b"content-length", str(len(body)).encode())]
    response = await pool.request(method, target, headers, body)
    try:
        data = b"".join([chunk async for chunk in response.body()])
        return response.status, dict(response.headers), data
    finally:
        await response.aclose()


async def test_connections_are_kept_alive_and_reused(service: Server) -> None:
    pool = _pool(service.port)
    for i in range(20):
        status, _, body = await _call(pool, b"POST", b"/", f"n{i}".encode())
        assert (status, body) == (200, f"echo:n{i}".encode())
    assert pool.open_connections == 1
    await pool.aclose()


async def test_a_streamed_request_body_arrives_whole(service: Server) -> None:
    pool = _pool(service.port)

    async def parts() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"x" * i

    expected = sum(range(100))
    response = await pool.request(
        b"POST",
        b"/",
        [(b"host", b"t"), (b"transfer-encoding", b"chunked")],
        parts(),
        chunked=True,
    )
    body = b"".join([c async for c in response.body()])
    await response.aclose()
    assert response.headers and dict(response.headers)[b"x-len"] == str(expected).encode()
    assert body == b"echo:" + b"".join(b"x" * i for i in range(100))
    await pool.aclose()


async def test_chunked_empty_and_head_responses_are_framed_right(service: Server) -> None:
    pool = _pool(service.port)
    status, _, body = await _call(pool, target=b"/stream")
    assert status == 200 and body == b"".join(f"part-{i};".encode() for i in range(50))
    assert (await _call(pool, target=b"/empty"))[0::2] == (204, b"")
    status, headers, body = await _call(pool, b"HEAD", b"/")
    assert status == 200 and body == b"" and headers[b"content-length"] == b"5"
    # The connection after each of those still works.
    assert (await _call(pool, b"POST", b"/", b"after"))[2] == b"echo:after"
    await pool.aclose()


async def test_connections_the_service_closed_while_idle_are_not_used() -> None:
    server = Server(_app)
    server.config.timeout_keep_alive = 0.2  # the service drops idle connections fast
    await server.start()
    try:
        pool = _pool(server.port)
        for i in range(4):
            assert (await _call(pool, b"POST", b"/", b"%d" % i))[0] == 200
            await asyncio.sleep(0.4)
        assert pool.open_connections <= 1
        await pool.aclose()
    finally:
        await server.stop()


async def test_a_full_pool_queues_calls_then_gives_up_after_the_pool_timeout(
    service: Server,
) -> None:
    pool = UpstreamPool("127.0.0.1", service.port, timeouts=FAST, max_connections=2)
    results = await asyncio.gather(
        *(_call(pool, target=b"/sleep?s=0.1") for _ in range(8)), return_exceptions=True
    )
    assert all(not isinstance(r, Exception) and r[0] == 200 for r in results), results
    assert pool.open_connections <= 2
    slow = [asyncio.create_task(_call(pool, target=b"/sleep?s=0.8")) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(UpstreamError) as caught:
        await _call(pool)
    assert caught.value.kind == "unavailable"
    await asyncio.gather(*slow)
    await pool.aclose()


async def test_a_call_cancelled_as_its_turn_comes_passes_the_connection_on(
    service: Server,
) -> None:
    pool = UpstreamPool("127.0.0.1", service.port, timeouts=FAST, max_connections=1)
    headers = [(b"host", b"test"), (b"content-length", b"0")]
    first = await pool.request(b"GET", b"/", headers, b"")
    queued = asyncio.create_task(pool.request(b"GET", b"/", headers, b""))
    await asyncio.sleep(0.05)  # waiting for the only connection
    assert [chunk async for chunk in first.body()] == [b"echo:"]
    await first.aclose()  # hands the connection to the queued call...
    queued.cancel()  # ...which gives up before it can use it
    done, _ = await asyncio.wait({queued}, timeout=2)
    assert queued in done and queued.cancelled()
    # The connection went back to the pool: the next call gets it at once, no new one.
    status, _, body = await _call(pool)
    assert (status, body) == (200, b"echo:")
    assert pool.open_connections == 1
    await pool.aclose()


async def test_a_call_cancelled_as_its_connection_opens_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests_seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            requests_seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server, port = await _raw_server(record)
    loop = asyncio.get_running_loop()
    open_connection = loop.create_connection
    opened = asyncio.Event()
    finish = loop.create_future()

    async def connect_when_told(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The real connection, but it is reported open only when the test says so,
        # so the cancel can land in that same moment.
        transport, protocol = await open_connection(*args, **kwargs)
        opened.set()
        try:
            await finish
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    monkeypatch.setattr(loop, "create_connection", connect_when_told)
    pool = UpstreamPool("127.0.0.1", port, timeouts=FAST, max_connections=1)
    call = asyncio.create_task(
        pool.request(b"GET", b"/", [(b"host", b"test"), (b"content-length", b"0")], b"")
    )
    await asyncio.wait_for(opened.wait(), 2)
    finish.set_result(None)
    call.cancel()
    done, _ = await asyncio.wait({call}, timeout=2)
    assert call in done and call.cancelled()
    await asyncio.sleep(0.2)  # time for a request, had one been sent, to arrive
    assert requests_seen == []
    assert pool.open_connections == 0
    await pool.aclose()
    server.close()
    await server.wait_closed()


async def _raw_server(handler: Callable[..., Awaitable[None]]) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


@pytest.mark.parametrize(
    "reply, outcome",
    [
        # A body that ends when the connection does (legal in HTTP/1.1).
        (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it", (200, b"all of it")),
        (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", (200, b"ok")),
        (b"this is not http\r\n\r\n", "broken"),
        (b"", "broken"),  # closed without a word
        (b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", "broken"),  # cut off
    ],
)
async def test_odd_and_broken_services(reply: bytes, outcome) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server, port = await _raw_server(handler)
    pool = _pool(port)
    try:
        if isinstance(outcome, tuple):
            status, _, body = await _call(pool)
            assert (status, body) == outcome
        else:
            with pytest.raises(UpstreamError) as caught:
                await _call(pool)
            assert caught.value.kind == outcome
    finally:
        await pool.aclose()
        server.close()


async def test_a_service_that_stops_sending_mid_body_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nstart")
        await writer.drain()
        await asyncio.sleep(3)
        writer.close()

    server, port = await _raw_server(handler)
    pool = _pool(port, timeouts=Timeouts(connect=1, read=0.3, write=1, pool=1))
    try:
        response = await pool.request(b"GET", b"/", [(b"host", b"t")], b"")
        with pytest.raises(UpstreamError) as caught:
            async for _chunk in response.body():
                pass
        assert caught.value.kind == "timeout"
        await response.aclose()
        assert pool.open_connections == 0  # a half-read connection is never reused
    finally:
        await pool.aclose()
        server.close()


async def test_nobody_listening_is_unavailable_at_once() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pool = _pool(port)
    with pytest.raises(UpstreamError) as caught:
        await _call(pool)
    assert caught.value.kind == "unavailable"
    assert pool.open_connections == 0
    await pool.aclose()
