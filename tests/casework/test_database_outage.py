"""When PostgreSQL drops away in the middle of a sync: a clear 503, nothing half-stored,
and the same batch goes through once the database is back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager

from pathways.bootstrap import service_database_url
from pathways.sandbox import Sandbox
from services.casework.app import create_app
from services.casework.store import sessions as session_store
from tests.casework.support import Casework
from tests.support.apps import RunningApp, service_settings
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
async def proxy(sandbox: Sandbox) -> AsyncIterator[TcpProxy]:
    tcp = await TcpProxy(sandbox.config.db_host, sandbox.config.db_port).start()
    try:
        yield tcp
    finally:
        await tcp.close()


@pytest.fixture
async def fragile(sandbox: Sandbox, proxy: TcpProxy) -> AsyncIterator[RunningApp]:
    """A second casework process whose database connection runs through the proxy
    (HTTP only: the shared app keeps consuming events)."""
    url = service_database_url(
        sandbox.config.login("casework"),
        host="127.0.0.1",
        port=proxy.port,
        database=sandbox.config.database,
    )
    settings = service_settings(
        sandbox, "casework", database_url=url, run_consumer=False, run_relay=False
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield RunningApp("casework", app, sandbox.config.internal_secret)


async def test_a_sync_cut_off_mid_batch_is_503_and_stores_nothing(
    casework: Casework,
    provider,
    provider_id: uuid.UUID,
    fragile: RunningApp,
    proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = (await casework.participant(provider, provider_id))["id"]
    batch = {
        "sessions": [
            {
                "external_id": f"outage-{i}",
                "participant_id": pid,
                "occurred_at": "2024-03-01T10:00:00+00:00",
                "kind": "phone",
                "attendance": "attended",
                "modified_at": "2024-03-01T12:00:00+00:00",
            }
            for i in range(50)
        ]
    }
    read_stored = session_store.stored_sessions

    async def cut_then_read(*args, **kwargs):
        # The participants were read over the connection; now the network goes.
        await proxy.cut()
        return await read_stored(*args, **kwargs)

    monkeypatch.setattr(session_store, "stored_sessions", cut_then_read)
    async with fragile.client(provider_id, "provider") as client:
        response = await client.post("/v1/sessions/bulk", json=batch)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" in response.headers
    assert (await provider.get(f"/v1/participants/{pid}/sessions")).json()["items"] == []

    monkeypatch.setattr(session_store, "stored_sessions", read_stored)
    proxy.restore()
    async with fragile.client(provider_id, "provider") as client:
        again = await client.post("/v1/sessions/bulk", json=batch)
    assert again.status_code == 200, again.text
    assert {r["status"] for r in again.json()["results"]} == {"created"}
