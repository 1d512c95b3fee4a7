"""``pathways demo``: use the running platform, or start one for the demo.

If a gateway already answers (``make run`` in another terminal), the demo simply runs
against it and leaves it as it was. Otherwise it sets the platform up exactly as
``pathways run`` does (preflight, roles, schemas, migrations), starts every service
under a :class:`~pathways.supervisor.Supervisor` (their logs in ``.pathways/logs``),
runs the simulation, and then keeps the platform up, so the dashboard can be opened,
until Ctrl-C — or stops it at once with ``--stop-when-done``.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from rich.console import Console

from pathways import bootstrap as db_bootstrap
from pathways.config import LOCAL_STATE, PlatformConfig
from pathways.preflight import preflight
from pathways.simulate.main import Options, Outcome, simulate
from pathways.supervisor import Supervisor


class PlatformProblem(Exception):
    pass


async def gateway_is_up(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def start_platform(config: PlatformConfig, console: Console, log_dir: Path) -> Supervisor:
    failed = [check for check in await preflight(config) if not check.ok]
    if failed:
        raise PlatformProblem("\n".join(check.message for check in failed))
    console.print(f"Setting up database {config.database} (roles, schemas, migrations) ...")
    await db_bootstrap.bootstrap(
        config.admin_dsn,
        config.database,
        config.logins,
        host=config.db_host,
        port=config.db_port,
    )
    supervisor = Supervisor(config, db_bootstrap.SERVICES, log_dir=log_dir)
    console.print(f"Starting Pathways (service logs in {log_dir}) ...")
    await supervisor.start()
    ready = await supervisor.wait_ready(timeout=90)
    if not all(ready.values()):
        await supervisor.stop()
        down = ", ".join(name for name, ok in ready.items() if not ok)
        raise PlatformProblem(f"these services did not become ready: {down} (see {log_dir})")
    return supervisor


async def wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def demo(
    config: PlatformConfig,
    options: Options,
    console: Console,
    *,
    keep_running: bool = True,
    log_dir: Path | None = None,
) -> Outcome:
    """Run the simulation on the platform ``config`` describes, starting it if needed."""
    if await gateway_is_up(config.gateway_url):
        console.print(f"Using the Pathways platform already running at {config.gateway_url}.")
        return await simulate(options, console)
    supervisor = await start_platform(config, console, log_dir or LOCAL_STATE / "logs")
    try:
        outcome = await simulate(options, console)
        if keep_running:
            console.print(
                f"\nPathways keeps running at {config.gateway_url} so you can open the "
                "dashboard. [bold]Stop it with Ctrl-C.[/]"
            )
            await wait_for_signal()
            console.print("stopping Pathways ...")
        return outcome
    finally:
        await supervisor.stop()
