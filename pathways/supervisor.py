"""Run every service as its own process, restart any that dies, stop them all on a signal.

Used by ``make run`` in the foreground (Ctrl-C) or detached (SIGTERM), and by the
test suite and benchmarks, which start the platform exactly the way ``make run`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from pathways.config import REPO, PlatformConfig
from shared.logging import get_logger

log = get_logger("supervisor")


@dataclass
class Child:
    service: str
    command: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


def service_command(service: str, config: PlatformConfig) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        f"services.{service}.app:create_app",
        "--factory",
        "--host",
        config.host,
        "--port",
        str(config.ports[service]),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "10",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


class Supervisor:
    def __init__(
        self,
        config: PlatformConfig,
        services: Iterable[str],
        *,
        log_dir: Path | None = None,
        extra_env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.children: dict[str, Child] = {}
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []
        for service in services:
            env = {
                **os.environ,
                **config.service_env(service),
                **(extra_env or {}).get(service, {}),
            }
            env.setdefault("PYTHONUNBUFFERED", "1")
            self.children[service] = Child(
                service,
                service_command(service, config),
                env,
                log_path=(log_dir / f"{service}.log") if log_dir else None,
            )

    async def start(self) -> None:
        for child in self.children.values():
            await self._spawn(child)
            self._watchers.append(asyncio.create_task(self._watch(child)))

    async def _spawn(self, child: Child) -> None:
        stdout: int | IO[bytes] | None = None
        if child.log_path is not None:
            child.log_path.parent.mkdir(parents=True, exist_ok=True)
            if child._log_file is None:
                child._log_file = child.log_path.open("ab")
            stdout = child._log_file
        child.process = await asyncio.create_subprocess_exec(
            *child.command,
            env=child.env,
            cwd=REPO,
            stdout=stdout,
            stderr=asyncio.subprocess.STDOUT if stdout is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        child.started_at = time.monotonic()

    async def _watch(self, child: Child) -> None:
        delay = 0.5
        while True:
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping:
                return
            if time.monotonic() - child.started_at > 30:
                delay = 0.5
            log.warning(
                "service exited; restarting", service=child.service, code=code, restart_in=delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)
            if self._stopping:
                return
            child.restarts += 1
            await self._spawn(child)

    async def wait_ready(
        self, timeout: float = 60.0, services: Iterable[str] | None = None
    ) -> dict[str, bool]:
        """Poll each service's ``/ready`` until all answer 200 or time runs out."""
        names = list(services or self.children)
        ready = dict.fromkeys(names, False)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline and not all(ready.values()):
                for name in names:
                    if ready[name]:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{self.config.url(name)}/ready")
                        ready[name] = response.status_code == 200
                if not all(ready.values()):
                    await asyncio.sleep(0.2)
        return ready

    def signal_child(self, service: str, sig: int) -> None:
        child = self.children[service]
        if child.running and child.process is not None:
            child.process.send_signal(sig)

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for child in self.children.values():
            if child.running and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children.values():
            if child.process is None:
                continue
            remaining = max(0.1, deadline - time.monotonic())
            try:
                async with asyncio.timeout(remaining):
                    await child.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
        for watcher in self._watchers:
            watcher.cancel()
        for child in self.children.values():
            if child._log_file is not None:
                child._log_file.close()
                child._log_file = None


async def run_until_signalled(supervisor: Supervisor, *, on_ready=None) -> None:
    """Start everything, then wait for SIGINT/SIGTERM and stop everything."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await supervisor.start()
    ready = await supervisor.wait_ready()
    if on_ready is not None:
        on_ready(ready)
    await stop.wait()
    print("\nstopping Pathways ...", flush=True)
    await supervisor.stop()
