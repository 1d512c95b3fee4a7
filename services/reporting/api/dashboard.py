"""``/dashboard``: the programme office's dashboard, a static page and its assets.

No caller is needed to load it (the gateway forwards ``/dashboard`` without
authentication): it holds no data. Its script asks for a programme-office API key,
keeps it in ``sessionStorage`` and calls ``/v1/reports/*`` on the same origin with
``Authorization: Bearer``. Everything is served from here (the network is closed to
CDNs), under a content security policy that allows nothing from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from shared.errors import not_found

STATIC = Path(__file__).resolve().parent.parent / "dashboard"
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/dashboard")
async def dashboard() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/dashboard/")
async def dashboard_slash() -> Response:
    return RedirectResponse("/dashboard", status_code=308)


@router.get("/dashboard/{asset}")
async def dashboard_asset(asset: str) -> Response:
    media_type = ASSETS.get(asset)
    if media_type is None:  # only the known files: no path is ever built from input
        raise not_found("dashboard file")
    return _file(asset, media_type)
