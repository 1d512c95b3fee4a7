"""A lean HTTP/1.1 client for the gateway's calls to the services behind it.

Why not httpx/httpcore: profiling the gateway showed httpcore's connection pool
re-examining every pooled connection (socket readability checks through anyio) on
each request, which made the pool, not the gateway's own work, the largest cost on
the hot path. This client does only what forwarding needs, on asyncio's protocol API
with the C HTTP parser uvicorn already uses (``httptools``):

* one pool of keep-alive connections per service, idle connections reused last-in
  first-out and dropped before the service's own keep-alive timeout would close them;
* the request body streamed from the partner (or sent from a buffer), the response
  body streamed back with back-pressure (reading pauses while the partner is slow);
* bounded waits everywhere: connecting, waiting for a pooled connection, writing, and
  reading (for the head of the response and between body chunks).

Errors are :class:`UpstreamError` with ``kind`` ``"unavailable"`` (could not connect,
or no connection free in time: nothing was sent), ``"timeout"`` or ``"broken"``.
A request is never retried: a service may have acted on it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httptools

# Uvicorn closes idle keep-alive connections after 5 s; give them up before that so a
# request is never written to a connection the service is closing.
DEFAULT_KEEPALIVE_EXPIRY = 3.0
_HIGH_WATER = 256 * 1024  # response bytes buffered before reading pauses
_LOW_WATER = 64 * 1024


class UpstreamError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    write: float
    pool: float


class _Exchange:
    """The state of one response being received."""

    __slots__ = (
        "buffered",
        "chunks",
        "close_delimited",
        "complete",
        "error",
        "headers",
        "headers_ready",
        "keep_alive",
        "progress",
        "status",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.progress = asyncio.Event()
        self.complete = False
        self.keep_alive = False
        self.close_delimited = False
        self.error: UpstreamError | None = None

    def fail(self, error: UpstreamError) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error)
            self.headers_ready.exception()  # retrieved; the waiter re-raises it
        self.progress.set()


class _Connection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.closed = False
        self.idle = False
        self.idle_since = 0.0
        self.reused = False
        self.counted_out = False  # no longer counted among the pool's open connections
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False

    # --- asyncio protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:
            self.close()  # nothing was asked: a confused service; drop the connection
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.exchange.fail(UpstreamError("broken", f"malformed response ({exc})"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if exchange.close_delimited and exchange.headers_ready.done():
                exchange.complete = True  # a body that ends when the connection does
                exchange.progress.set()
            else:
                exchange.fail(UpstreamError("broken", "the service closed the connection"))
        self.pool._lost(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- httptools callbacks ---------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.exchange is not None
        self.exchange.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            exchange.headers.clear()  # an interim response: the real one follows
            return
        exchange.status = status
        exchange.keep_alive = self.parser.should_keep_alive()
        names = {name for name, _ in exchange.headers}
        exchange.close_delimited = (
            b"content-length" not in names
            and b"transfer-encoding" not in names
            and status not in (204, 304)
        )
        if not exchange.headers_ready.done():
            exchange.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.chunks.append(body)
        exchange.buffered += len(body)
        exchange.progress.set()
        if exchange.buffered > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        if exchange.status == 0:
            return  # the end of an interim response
        exchange.complete = True
        exchange.progress.set()

    # --- used by the pool and responses ------------------------------------------------

    def consumed(self, size: int) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.buffered -= size
        if self._reading_paused and exchange.buffered < _LOW_WATER and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()

    async def write(self, data: bytes, timeout: float) -> None:
        if self.closed or self.transport is None:
            raise UpstreamError("broken", "the service closed the connection")
        self.transport.write(data)
        if not self._writable.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self._writable.wait()
            except TimeoutError as exc:
                raise UpstreamError("timeout", "the service stopped reading") from exc
        if self.closed:
            raise UpstreamError("broken", "the service closed the connection")

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class UpstreamResponse:
    def __init__(
        self, pool: UpstreamPool, connection: _Connection, exchange: _Exchange, head: bool
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._exchange = exchange
        self._head = head
        self._released = False
        self.status = exchange.status
        self.headers = exchange.headers

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises UpstreamError if it stops or is cut off."""
        if self._head:
            return
        exchange = self._exchange
        timeout = self._pool.timeouts.read
        while True:
            if exchange.chunks:
                chunk = exchange.chunks.popleft()
                self._connection.consumed(len(chunk))
                yield chunk
                continue
            if exchange.complete:
                return
            if exchange.error is not None:
                raise exchange.error
            exchange.progress.clear()
            try:
                async with asyncio.timeout(timeout):
                    await exchange.progress.wait()
            except TimeoutError as exc:
                raise UpstreamError("timeout", "the service stopped sending") from exc

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        exchange = self._exchange
        reusable = (
            exchange.complete
            and exchange.keep_alive
            and not exchange.chunks
            and not self._head  # the parser cannot be told a HEAD response has no body
            and not exchange.close_delimited
        )
        self._pool._release(self._connection, reusable)


class UpstreamPool:
    """Keep-alive connections to one service."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeouts: Timeouts,
        max_connections: int,
        use_tls: bool = False,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    ) -> None:
        self.host = host
        self.port = port
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.ssl = ssl.create_default_context() if use_tls else None
        self._idle: list[_Connection] = []
        self._open = 0  # connections open or being opened
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        *,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Send a request; returns once the response's status and headers are in.

        ``headers`` must already say how the body is framed (``content-length``, or
        ``transfer-encoding: chunked`` with ``chunked=True``)."""
        connection = await self._acquire()
        exchange = _Exchange(self.loop)
        connection.exchange = exchange
        connection.parser = httptools.HttpResponseParser(connection)
        head = b"".join(
            [method, b" ", target, b" HTTP/1.1\r\n"]
            + [b"".join((name, b": ", value, b"\r\n")) for name, value in headers]
            + [b"\r\n"]
        )
        try:
            if isinstance(body, bytes):
                await connection.write(head + body, self.timeouts.write)
            else:
                await connection.write(head, self.timeouts.write)
                async for chunk in body:
                    if chunked:
                        if not chunk:
                            continue
                        chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
                    await connection.write(chunk, self.timeouts.write)
                if chunked:
                    await connection.write(b"0\r\n\r\n", self.timeouts.write)
            # A timer rather than wait_for: on the hot path it saves a task per call.
            timer = self.loop.call_later(
                self.timeouts.read,
                exchange.fail,
                UpstreamError("timeout", "the service did not answer in time"),
            )
            try:
                await exchange.headers_ready
            finally:
                timer.cancel()
        except BaseException:
            self._release(connection, reusable=False)
            raise
        return UpstreamResponse(self, connection, exchange, head=method == b"HEAD")

    # --- the pool --------------------------------------------------------------------

    async def _acquire(self) -> _Connection:
        if self._closed:
            raise UpstreamError("unavailable", "the gateway is shutting down")
        loop = self.loop
        deadline = loop.time() + self.timeouts.pool
        while True:
            now = loop.time()
            while self._idle:
                connection = self._idle.pop()
                connection.idle = False
                if connection.closed or now - connection.idle_since > self.keepalive_expiry:
                    self._forget(connection)
                    continue
                connection.reused = True
                return connection
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one(None)
                    raise
            waiter: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    handed = await waiter
            except BaseException as exc:
                self._pass_on(waiter)
                if isinstance(exc, TimeoutError):
                    raise UpstreamError("unavailable", "no connection to the service free") from exc
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if handed is not None:
                handed.reused = True
                return handed

    async def _connect(self) -> _Connection:
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands
        # as the connection opens, and the cancelled call would go on to send.
        try:
            async with asyncio.timeout(self.timeouts.connect):
                _, protocol = await self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError as exc:
            raise UpstreamError("unavailable", "connecting to the service timed out") from exc
        except OSError as exc:
            raise UpstreamError("unavailable", f"cannot connect ({type(exc).__name__})") from exc
        return protocol  # type: ignore[return-value]

    def _release(self, connection: _Connection, reusable: bool) -> None:
        connection.exchange = None
        if not reusable or connection.closed or self._closed:
            connection.close()
            self._forget(connection)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle = True
        connection.idle_since = self.loop.time()
        self._idle.append(connection)

    def _lost(self, connection: _Connection) -> None:
        """The connection closed (either side); an idle one leaves the pool now."""
        if connection.idle:
            connection.idle = False
            with contextlib.suppress(ValueError):
                self._idle.remove(connection)
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        if connection.counted_out:
            return
        connection.counted_out = True
        self._open -= 1
        self._wake_one(None)

    def _pass_on(self, waiter: asyncio.Future[_Connection | None]) -> None:
        """A caller gave up (timed out or cancelled) just as its turn came: hand what it
        was given to the next, or the connection (or the slot to open one) is lost."""
        if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
            return
        handed = waiter.result()
        if handed is None:
            self._wake_one(None)
        else:
            self._release(handed, reusable=True)

    def _wake_one(self, value: _Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(value)
                return

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._idle):
            connection.close()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(UpstreamError("unavailable", "the gateway is shutting down"))
                waiter.exception()
