"""The whole platform as processes, started the way ``make run`` starts it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pathways.bootstrap import SERVICES
from pathways.config import PlatformConfig
from pathways.sandbox import Sandbox
from pathways.supervisor import Supervisor
from tests.support.apps import TEST_POOL_SIZE, TEST_RETRY_DELAYS_MS


@dataclass
class RunningPlatform:
    sandbox: Sandbox
    supervisor: Supervisor
    log_dir: Path

    @property
    def config(self) -> PlatformConfig:
        return self.sandbox.config

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url

    @property
    def admin_token(self) -> str:
        return self.config.admin_token


# Rewires a created sandbox before the processes start (e.g. points amqp_url or db_port
# at a TcpProxy) and may return per-service environment overrides.
Configure = Callable[[PlatformConfig], Mapping[str, Mapping[str, str]] | None]


@contextlib.asynccontextmanager
async def start_platform(
    log_dir: Path,
    label: str = "p",
    extra_env: dict[str, str] | None = None,
    *,
    configure: Configure | None = None,
) -> AsyncIterator[RunningPlatform]:
    """``extra_env`` overrides the test defaults below (the benchmarks want bigger pools);
    ``configure`` runs once the sandbox exists, so its names and ports are known."""
    sandbox = Sandbox.new(label)
    sandbox.config.extra_env.update(
        {
            "PATHWAYS_RETRY_DELAYS_MS": str(TEST_RETRY_DELAYS_MS),
            "PATHWAYS_OUTBOX_POLL_SECONDS": "0.1",
            # Several platforms may run at once (tests, benchmarks): keep connections few.
            **{
                f"{service.upper()}_DATABASE_POOL_SIZE": str(TEST_POOL_SIZE) for service in SERVICES
            },
        }
    )
    sandbox.config.extra_env.update(extra_env or {})
    await sandbox.create()
    per_service = configure(sandbox.config) if configure is not None else None
    shutil.rmtree(log_dir, ignore_errors=True)
    supervisor = Supervisor(
        sandbox.config,
        SERVICES,
        log_dir=log_dir,
        extra_env={service: dict(env) for service, env in (per_service or {}).items()},
    )
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=60)
        if not all(ready.values()):
            raise RuntimeError(f"platform did not become ready: {ready}; logs in {log_dir}")
        yield RunningPlatform(sandbox, supervisor, log_dir)
    finally:
        await supervisor.stop()
        await sandbox.destroy()
