"""A stand-in for the gateway in front of the in-process reporting service, so a real
browser can load the dashboard: a real HTTP server on loopback that forwards
``/dashboard`` as is and ``/v1/reports`` signed as the programme office whose API key
the request bears (as the gateway does after authenticating it)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pathways.sandbox import free_port
from tests.support.apps import RunningApp
from tests.support.signing import GatewaySigner

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def gateway_stand_in(rep: RunningApp, keys: dict[str, tuple[uuid.UUID, str]]):
    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        auth = None
        if path.startswith("/v1/"):
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if bearer not in keys:
                response: Response = JSONResponse(
                    {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": ""},
                    status_code=401,
                    media_type="application/problem+json",
                )
                await response(scope, receive, send)
                return
            partner_id, kind = keys[bearer]
            auth = GatewaySigner(rep.secret, partner_id, kind)
        elif not path.startswith("/dashboard"):
            await Response(status_code=404)(scope, receive, send)
            return
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=rep.app), base_url="http://reporting", auth=auth
        ) as client:
            upstream = await client.get(path, params=request.url.query)
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        }
        await Response(upstream.content, status_code=upstream.status_code, headers=headers)(
            scope, receive, send
        )

    return app


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "stand-in gateway did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
