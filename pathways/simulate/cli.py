"""``pathways simulate`` and ``pathways demo`` (registered in :mod:`pathways.cli`)."""

from __future__ import annotations

import asyncio
import os
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from pathways.simulate.programme import DEFAULT_PEOPLE, DEFAULT_SEED
from pathways.simulate.rules import uk_today

PEOPLE = typer.Option(
    DEFAULT_PEOPLE, "--people", "-n", min=1, max=200_000, help="How many people the story follows."
)
SEED = typer.Option(
    DEFAULT_SEED, "--seed", "-s", help="The story's seed: the same seed and people, the same story."
)
CONCURRENCY = typer.Option(
    24, "--concurrency", min=1, max=256, help="Calls in flight at once, over all partners."
)
AS_OF = typer.Option(
    None,
    "--as-of",
    help="The business date the story ends on and the reports are read as of (YYYY-MM-DD, "
    "not in the future). Default: today in the UK.",
    show_default=False,
)
PROGRAMME = typer.Option(
    None,
    "--programme",
    help="Programme code to create. Default: working-well-sim-s<seed>-n<people>, with a "
    "numeric suffix if a previous run took it.",
    show_default=False,
)
REPORT_TIMEOUT = typer.Option(
    300.0, "--report-timeout", min=1, help="Seconds to wait for the reports to catch up."
)
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("must be a date, YYYY-MM-DD", param_hint="--as-of") from None
    if day > uk_today():
        raise typer.BadParameter("must not be in the future", param_hint="--as-of")
    return day


def _admin_token(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("PATHWAYS_ADMIN_TOKEN"):
        return os.environ["PATHWAYS_ADMIN_TOKEN"]
    from pathways.config import local_platform

    return local_platform().admin_token


def simulate_command(
    people: int = PEOPLE,
    seed: int = SEED,
    gateway_url: str = typer.Option(
        "http://127.0.0.1:8000", "--gateway-url", help="The running Pathways gateway."
    ),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        help="The gateway's admin token. Default: $PATHWAYS_ADMIN_TOKEN, else the one "
        "`make run` keeps in .pathways/local.env.",
        show_default=False,
    ),
    concurrency: int = CONCURRENCY,
    as_of: str | None = AS_OF,
    programme: str | None = PROGRAMME,
    report_timeout: float = REPORT_TIMEOUT,
    progress: bool = PROGRESS,
) -> None:
    """Simulate a Working Well programme through a running gateway, as its partners would.

    Registers the partners (ten Jobcentres, probation, treatment services, two providers,
    the programme office) and the programme, plays a deterministic story of PEOPLE
    synthetic people through the partner API, then compares the reporting API's figures
    with the story's own and prints both. Exits 1 if any figure or step differs.
    """
    from pathways.simulate.main import GatewayUnavailable, Options, simulate

    options = Options(
        gateway_url=gateway_url.rstrip("/"),
        admin_token=_admin_token(admin_token),
        people=people,
        seed=seed,
        concurrency=concurrency,
        as_of=_as_of(as_of),
        programme=programme,
        report_timeout=report_timeout,
        progress=progress,
    )
    console = Console()
    try:
        outcome = asyncio.run(simulate(options, console))
    except GatewayUnavailable as exc:
        console.print(f"[red]{exc}[/]: start it with `make run` (or use `make demo`).")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if outcome.ok else 1)


def demo_command(
    people: int = PEOPLE,
    seed: int = SEED,
    concurrency: int = CONCURRENCY,
    as_of: str | None = AS_OF,
    programme: str | None = PROGRAMME,
    report_timeout: float = REPORT_TIMEOUT,
    progress: bool = PROGRESS,
    keep_running: bool = typer.Option(
        True,
        "--keep-running/--stop-when-done",
        help="If the demo started the platform: keep it up for the dashboard until "
        "Ctrl-C, or stop it when the simulation ends.",
    ),
) -> None:
    """Start Pathways if it is not running, then simulate a programme on it (make demo).

    Uses the platform `make run` would run (gateway on 127.0.0.1:8000). If it is not
    running, sets it up and starts it, with service logs in .pathways/logs/, runs the
    simulation, and keeps it running for the dashboard until Ctrl-C.
    """
    from pathways.config import local_platform
    from pathways.simulate.local import PlatformProblem, demo
    from pathways.simulate.main import Options

    config = local_platform()
    options = Options(
        gateway_url=config.gateway_url,
        admin_token=config.admin_token,
        people=people,
        seed=seed,
        concurrency=concurrency,
        as_of=_as_of(as_of),
        programme=programme,
        report_timeout=report_timeout,
        progress=progress,
    )
    console = Console()
    try:
        outcome = asyncio.run(
            demo(config, options, console, keep_running=keep_running, log_dir=_log_dir())
        )
    except PlatformProblem as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(0 if outcome.ok else 1)


def _log_dir() -> Path:
    from pathways.config import LOCAL_STATE

    return LOCAL_STATE / "logs"
