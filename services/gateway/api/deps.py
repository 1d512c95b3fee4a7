"""Who is calling the gateway's own routes: the admin (token) or a partner (key)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from services.gateway import domain
from services.gateway.auth import Partner
from services.gateway.proxy import PARTNER_SCOPE_KEY, GatewayState
from shared.errors import Problem


def _state(request: Request) -> GatewayState:
    return request.app.state.runtime.extras["gateway"]


# Dependencies are async: FastAPI runs a plain ``def`` one in a worker thread, a hop
# that costs more than the work itself on every request.
async def gateway_state(request: Request) -> GatewayState:
    return _state(request)


GatewayDep = Annotated[GatewayState, Depends(gateway_state)]


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="pathways"'})


async def require_admin(request: Request) -> None:
    expected: bytes = _state(request).admin_token
    token = domain.bearer_token(request.headers.get("authorization"))
    # compare_digest on bytes of any length: no early exit that would time the token.
    if token is None or not hmac.compare_digest(token.encode(), expected):
        raise _unauthorized("The admin token is required: Authorization: Bearer <admin token>.")


AdminDep = Depends(require_admin)


async def current_partner(request: Request) -> Partner:
    partner = request.scope.get(PARTNER_SCOPE_KEY)
    if not isinstance(partner, Partner):
        # Only the gateway middleware puts a partner here, after checking the key.
        raise _unauthorized("A valid API key is required: Authorization: Bearer <key>.")
    return partner


PartnerDep = Annotated[Partner, Depends(current_partner)]
