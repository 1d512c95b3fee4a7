"""One faulty-by-design platform for every reliability test: every service a process
behind the real gateway, as ``make run`` starts them, except that

* every service reaches RabbitMQ through a TCP proxy the tests cut and restore, and
* casework reaches PostgreSQL through another.

Each test restores what it cuts (in ``finally``), so the next finds a healthy platform.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest_asyncio

from pathways.bootstrap import SERVICES, service_database_url
from pathways.config import PlatformConfig
from tests.conftest import ARTIFACTS
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform, start_platform
from tests.support.tcpproxy import TcpProxy


@dataclass
class FaultyPlatform:
    platform: RunningPlatform
    broker_proxy: TcpProxy
    casework_db_proxy: TcpProxy
    gateway: Gateway

    def url(self, service: str) -> str:
        return self.platform.config.url(service)

    async def metric(self, service: str, name: str) -> float:
        """The sum of a Prometheus metric's samples on a service's /metrics."""
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{self.url(service)}/metrics")).text
        pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.M)
        return sum(float(v) for v in pattern.findall(text))

    async def fetchval(self, sql: str) -> object:
        """One value from the platform's database, as the superuser (sees every schema)."""
        config = self.platform.config
        conn = await asyncpg.connect(config.admin_dsn, database=config.database)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def unpublished(self) -> int:
        schemas = ("gateway", "referrals", "casework", "outcomes", "reporting")
        sql = " + ".join(
            f"(SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL)" for s in schemas
        )
        return int(await self.fetchval(f"SELECT {sql}"))  # type: ignore[arg-type]

    async def wait_ready(self, *services: str) -> None:
        ready = await self.platform.supervisor.wait_ready(timeout=60, services=services or None)
        assert all(ready.values()), ready


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest_asyncio.fixture(scope="package")
async def faulty() -> AsyncIterator[FaultyPlatform]:
    broker = await TcpProxy("127.0.0.1", 5672).start()
    database = await TcpProxy("127.0.0.1", 5432).start()

    def rewire(config: PlatformConfig) -> dict[str, dict[str, str]]:
        config.amqp_url = _through(config.amqp_url, broker.port)
        casework_url = service_database_url(
            config.login("casework"), host="127.0.0.1", port=database.port, database=config.database
        )
        return {"casework": {"CASEWORK_DATABASE_URL": casework_url}}

    assert "casework" in SERVICES
    try:
        async with start_platform(
            ARTIFACTS / "reliability-logs", "rel", configure=rewire
        ) as running:
            gateway = Gateway(running.gateway_url, running.admin_token)
            try:
                yield FaultyPlatform(running, broker, database, gateway)
            finally:
                await gateway.aclose()
    finally:
        await broker.close()
        await database.close()


@dataclass
class Programme:
    code: str
    referrer: Partner
    provider: Partner
    office: Partner


@pytest_asyncio.fixture
async def programme(faulty: FaultyPlatform) -> Programme:
    """A fresh programme with its own partners (each test counts only its own data)."""
    referrer = await faulty.gateway.create_partner("jcp")
    provider = await faulty.gateway.create_partner("provider")
    office = await faulty.gateway.create_partner("programme_office")
    code = (await faulty.gateway.define_programme({provider: ["Wigan"]}))["code"]
    return Programme(code, referrer, provider, office)
