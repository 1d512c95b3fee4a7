"""Sign test requests the way the gateway does, so a service can be called directly."""

from __future__ import annotations

import uuid
from collections.abc import Generator

import httpx

from shared.caller import PartnerKind, request_target, sign


class GatewaySigner(httpx.Auth):
    """httpx auth that adds the gateway's signed caller headers to each request."""

    def __init__(self, secret: str, partner_id: uuid.UUID, kind: PartnerKind | str) -> None:
        self.secret = secret
        self.partner_id = partner_id
        self.kind = str(kind)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request_target(request.url.path, request.url.query)
        request.headers.update(
            sign(
                self.secret,
                partner_id=self.partner_id,
                kind=self.kind,
                method=request.method,
                target=target,
            )
        )
        yield request
