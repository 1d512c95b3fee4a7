"""Services refuse calls that did not come through the gateway.

Every partner route of every service (found by walking the service's own routes, so
routes added later are covered too) answers 401 to a call without the gateway's signed
headers, with forged ones, or with headers signed for a different call.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from shared.caller import CallerDep, PartnerKind, sign
from shared.errors import install_problem_handlers
from tests.support.apps import InProcessApps

SERVICES = ("referrals", "casework", "outcomes", "reporting")


def partner_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, concrete path) for every partner route of ``app``."""
    try:
        from fastapi.routing import iter_route_contexts

        contexts: Any = list(iter_route_contexts(app.routes))
    except ImportError:  # older FastAPI: the routes are flat already
        contexts = app.routes
    found = []
    for route in contexts:
        path = getattr(route, "path", "")
        if not path.startswith("/v1/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                found.append((method, concrete))
    return found


async def refusals(app: FastAPI, secret: str, routes: list[tuple[str, str]]) -> list[str]:
    """Every way a call that bypasses the gateway could get in; returns what got in."""
    leaks = []
    partner = uuid.uuid4()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for method, path in routes:
            other_path = path + "x"
            attempts = {
                "unsigned": {},
                "forged signature": {
                    **sign(
                        "not-the-secret",
                        partner_id=partner,
                        kind="programme_office",
                        method=method,
                        target=path,
                    ),
                },
                "signed for another path": sign(
                    secret,
                    partner_id=partner,
                    kind="programme_office",
                    method=method,
                    target=other_path,
                ),
                "signed for another method": sign(
                    secret,
                    partner_id=partner,
                    kind="programme_office",
                    method="DELETE" if method != "DELETE" else "GET",
                    target=path,
                ),
                "replayed after the window": sign(
                    secret,
                    partner_id=partner,
                    kind="programme_office",
                    method=method,
                    target=path,
                    now=time.time() - 3600,
                ),
                "identity altered after signing": {
                    **sign(secret, partner_id=partner, kind="jcp", method=method, target=path),
                    "x-pathways-partner-kind": "programme_office",
                },
            }
            for label, headers in attempts.items():
                response = await client.request(method, path, headers=headers, json={})
                if response.status_code != 401:
                    leaks.append(f"{method} {path} {label}: {response.status_code}")
                elif response.headers.get("content-type") != "application/problem+json":
                    leaks.append(f"{method} {path} {label}: 401 without a problem body")
    return leaks


@pytest.mark.parametrize("service", SERVICES)
async def test_every_partner_route_of_the_service_refuses_calls_bypassing_the_gateway(
    apps: InProcessApps, service: str
) -> None:
    running = await apps.get(service)
    routes = partner_routes(running.app)
    assert routes, f"{service} has no /v1 routes yet"
    assert await refusals(running.app, running.secret, routes) == []
    # And the same calls signed as the gateway signs are let in (not 401).
    method, path = routes[0]
    async with running.client(uuid.uuid4(), PartnerKind.PROGRAMME_OFFICE) as client:
        response = await client.request(method, path, json={})
    assert response.status_code != 401, response.text


async def test_the_check_above_catches_an_unprotected_route(apps: InProcessApps) -> None:
    """The walk is a real test: a route without the caller check is reported."""
    running = await apps.get("referrals")
    app = FastAPI()
    app.state.runtime = running.runtime
    install_problem_handlers(app)

    @app.get("/v1/protected/{thing}")
    async def protected(thing: str, caller: CallerDep) -> dict:
        return {"thing": thing}

    @app.get("/v1/forgotten")
    async def forgotten() -> dict:
        return {}

    assert {r.path for r in app.routes if isinstance(r, APIRoute)} >= {"/v1/forgotten"}
    leaks = await refusals(app, running.secret, partner_routes(app))
    assert leaks and all(leak.startswith("GET /v1/forgotten") for leak in leaks)
