"""The platform started as `make run` starts it: five processes, each ready."""

from __future__ import annotations

import httpx

from pathways.bootstrap import SERVICES
from tests.support.platform import RunningPlatform


async def test_every_service_answers_health_ready_and_metrics(platform: RunningPlatform) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for service in SERVICES:
            base = platform.config.url(service)
            health = await client.get(f"{base}/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            ready = await client.get(f"{base}/ready")
            assert ready.status_code == 200, (service, ready.text)
            assert ready.json()["checks"] == {"database": True, "broker": True}
            metrics = await client.get(f"{base}/metrics")
            assert metrics.status_code == 200
            assert "outbox_backlog" in metrics.text
            assert "http_request_duration_seconds" in metrics.text
            assert f'pathways_service_info{{service="{service}"}} 1.0' in metrics.text


async def test_every_service_logs_json_lines_with_a_request_id(platform: RunningPlatform) -> None:
    import orjson

    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(
            f"{platform.config.url('referrals')}/no/such/route?nino=AB123456C",
            headers={"x-request-id": "req-abc-123"},
        )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-abc-123"
    lines = (platform.log_dir / "referrals.log").read_text().splitlines()
    records = [orjson.loads(line) for line in lines if line.startswith("{")]
    assert records, "no JSON log lines"
    assert all(line.startswith("{") for line in lines if line.strip())
    [logged] = [r for r in records if r.get("request_id") == "req-abc-123"]
    # Logged by route template, so a query string (which may carry data) never is.
    assert logged["route"] == "unmatched" and logged["status"] == 404
    assert "AB123456C" not in "\n".join(lines)
