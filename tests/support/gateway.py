"""Talk to a running gateway as the programme's admin and as its partners (contract §1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.builders import programme_body


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    kind: str
    api_key: str
    base_url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            timeout=kwargs.pop("timeout", 30),
            headers={"Authorization": f"Bearer {self.api_key}"},
            **kwargs,
        )


class Gateway:
    def __init__(self, base_url: str, admin_token: str) -> None:
        self.base_url = base_url
        self.admin = httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {admin_token}"}
        )

    async def create_partner(self, kind: str, name: str | None = None) -> Partner:
        name = name or f"{kind} {secrets.token_hex(3)}"
        response = await self.admin.post("/admin/partners", json={"name": name, "kind": kind})
        assert response.status_code == 201, response.text
        body = response.json()
        return Partner(body["id"], body["name"], body["kind"], body["api_key"], self.base_url)

    async def define_programme(
        self, providers: dict[Partner, list[str]], code: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        code = code or f"prog-{secrets.token_hex(4)}"
        body = programme_body(
            code,
            [
                {"partner_id": partner.id, "local_authorities": areas}
                for partner, areas in providers.items()
            ],
            **overrides,
        )
        response = await self.admin.post("/admin/programmes", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def aclose(self) -> None:
        await self.admin.aclose()
