"""Real little servers for the gateway's tests, all on loopback in this process.

* :class:`Server` serves any ASGI app with uvicorn on a free port.
* :func:`echo_app` is a stand-in for a service behind the gateway: it verifies the
  gateway's signed headers exactly as services do and echoes what it received.
* :class:`GatewayUnderTest` is a real gateway (its full lifespan: database, broker,
  background loops) served over HTTP.
* :class:`Receiver` is a partner's webhook endpoint whose answers a test scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from pathways.sandbox import Sandbox
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.caller import SIGNED_HEADERS, request_target, verify
from shared.errors import Problem
from tests.support.apps import service_settings
from tests.support.gateway import Gateway, Partner

UPSTREAMS = ("referrals", "casework", "outcomes", "reporting")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """An ASGI app served by uvicorn on a loopback port, inside this event loop."""

    def __init__(self, app: Any, *, port: int | None = None, lifespan: str = "off") -> None:
        self.port = port or free_port()
        self.config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,
            interface="asgi3",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(self.config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Server:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 30)
        self._task = None


# --------------------------------------------------------------------------------------
# A service stand-in
# --------------------------------------------------------------------------------------


@dataclass
class EchoLog:
    requests: list[dict[str, Any]] = field(default_factory=list)


def echo_app(secret: str, log: EchoLog, name: str = "echo") -> Callable:
    """Verifies the caller as a service would; answers with what it saw.

    Query parameters steer it: ``echo_status`` (answer with this status),
    ``echo_location`` (a Location header), ``echo_sleep`` (seconds before answering),
    ``echo_size`` (a streamed body of that many bytes), ``echo_crash`` (plain-text 500).
    """

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            return
        request = Request(scope, receive)
        body = await request.body()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        seen = {
            "service": name,
            "method": request.method,
            "path": scope["path"],
            "raw_path": scope.get("raw_path", b"").decode(),
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "body_length": len(body),
        }
        log.requests.append(seen)
        params = request.query_params
        caller = None
        if any(h in headers for h in SIGNED_HEADERS):
            try:
                verified = verify(
                    secret,
                    headers=request.headers,
                    method=request.method,
                    target=request_target(scope["path"], scope["query_string"]),
                )
            except Problem as problem:
                response: Response = JSONResponse(problem.body(), status_code=401)
                await response(scope, receive, send)
                return
            caller = {"partner_id": str(verified.partner_id), "kind": verified.kind.value}
        elif scope["path"].startswith("/v1/"):
            response = JSONResponse({"detail": "unsigned"}, status_code=401)
            await response(scope, receive, send)
            return
        if "echo_sleep" in params:
            await asyncio.sleep(float(params["echo_sleep"]))
        if "echo_crash" in params:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            return
        if "echo_size" in params:
            size = int(params["echo_size"])

            async def chunks():
                sent = 0
                while sent < size:
                    part = min(65536, size - sent)
                    sent += part
                    yield b"x" * part

            await StreamingResponse(chunks(), media_type="application/octet-stream")(
                scope, receive, send
            )
            return
        extra = {}
        if "echo_location" in params:
            extra["location"] = params["echo_location"]
        response = Response(
            orjson.dumps({"caller": caller, **seen}),
            status_code=int(params.get("echo_status", 200)),
            media_type="application/json",
            headers={**extra, "x-upstream": "echo", "connection": "keep-alive"},
        )
        await response(scope, receive, send)

    return app


# --------------------------------------------------------------------------------------
# A real gateway over HTTP
# --------------------------------------------------------------------------------------

FAST_WEBHOOKS: dict[str, Any] = {
    "webhook_allow_http": True,
    "webhook_allow_private_targets": True,
    "webhook_poll_seconds": 0.05,
    "webhook_timeout_seconds": 2.0,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_delay_seconds": 0.3,
    "webhook_retry_for_seconds": 60.0,
}


def gateway_settings(
    sandbox: Sandbox, *, upstream: str | None = None, **overrides: Any
) -> GatewaySettings:
    values: dict[str, Any] = {"audit_flush_seconds": 0.05, "port": free_port()}
    if upstream is not None:
        values.update({f"{name}_url": upstream for name in UPSTREAMS})
    values.update(overrides)
    return service_settings(sandbox, "gateway", **values)


class GatewayUnderTest:
    def __init__(self, sandbox: Sandbox, settings: GatewaySettings) -> None:
        self.sandbox = sandbox
        self.settings = settings
        self.app = create_app(settings)
        self.server = Server(self.app, port=settings.port, lifespan="on")
        self.admin = Gateway(self.server.url, sandbox.config.admin_token)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def runtime(self):
        return self.app.state.runtime

    @property
    def state(self):
        return self.runtime.extras["gateway"]

    async def start(self) -> GatewayUnderTest:
        await self.server.start()
        if self.runtime.consumer is not None:
            await asyncio.wait_for(self.runtime.consumer.ready.wait(), 15)
        await asyncio.wait_for(self.state.keys.listening.wait(), 15)
        return self

    async def stop(self) -> None:
        await self.server.stop()
        await self.admin.aclose()

    async def partner(self, kind: str) -> Partner:
        return await self.admin.create_partner(kind)

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 15), **kwargs
        )

    async def flush_audit(self) -> None:
        await self.state.audit.flush()


# --------------------------------------------------------------------------------------
# A partner's webhook endpoint
# --------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


class Receiver:
    """Records every POST; ``script`` decides each answer: a status code, or a
    ``("sleep", seconds)`` to be slow, from a function of the request."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[Received], Any] = lambda _r: 204
        self.server = Server(self._app)

    @property
    def url(self) -> str:
        return self.server.url

    async def _app(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        got = Received(scope["path"], dict(request.headers), await request.body())
        self.received.append(got)
        answer = self.answer(got)
        if isinstance(answer, tuple) and answer[0] == "sleep":
            await asyncio.sleep(answer[1])
            answer = 204
        headers = {"location": "http://127.0.0.1:1/elsewhere"} if answer in (301, 302) else {}
        await Response(status_code=answer, headers=headers)(scope, receive, send)

    async def start(self) -> Receiver:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

    def for_referral(self, referral_id: str, path: str | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.json.get("referral_id") == referral_id and (path is None or r.path == path)
        ]


async def raw_request(
    port: int, method: str, target: bytes, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte (no client normalises the path)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} ".encode() + target + b" HTTP/1.1", b"host: 127.0.0.1"]
        lines += [f"{k}: {v}".encode() for k, v in headers.items()]
        if body:
            lines.append(f"content-length: {len(body)}".encode())
        lines.append(b"connection: close")
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, payload
