"""``pathways reports ...``: the reporting service's operator commands."""

from __future__ import annotations

import asyncio
import sys

import typer

cli = typer.Typer(help="Reporting projections.", no_args_is_help=True)


@cli.command("rebuild")
def rebuild_command(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar="REPORTING_DATABASE_URL",
        help="The reporting service's database login (default: this machine's `make run`).",
        show_default=False,
    ),
) -> None:
    """Drop the reporting projections and replay every event received, with progress.

    Safe while the service runs: events arriving meanwhile are applied before it ends.
    """
    from services.reporting.rebuild import RebuildAlreadyRunning, rebuild
    from shared.db import create_engine

    if database_url is None:
        from pathways.config import local_platform

        database_url = local_platform().database_url("reporting")

    last_stage: list[str] = [""]

    def progress(stage: str, done: int, total: int | None) -> None:
        if stage != last_stage[0]:
            typer.echo(f"{stage} ...", err=True)
            last_stage[0] = stage
        if total:
            if done == total or done % 5000 == 0:
                typer.echo(f"  {done:,}/{total:,}", err=True)
        elif done:
            typer.echo(f"  {done:,}", err=True)

    async def run() -> None:
        engine = create_engine(database_url, schema="reporting", pool_size=1)
        try:
            result = await rebuild(engine, progress=progress)
        finally:
            await engine.dispose()
        typer.echo(
            f"rebuilt: {result.events_replayed:,} events replayed, "
            f"{result.events_during_rebuild:,} received during the rebuild, "
            f"{result.referrals:,} referrals, {result.participants:,} participants "
            f"in {result.seconds:.1f}s"
        )

    try:
        asyncio.run(run())
    except RebuildAlreadyRunning as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=3) from exc
    except Exception as exc:
        typer.echo(
            f"rebuild failed ({type(exc).__name__}); the projections are unchanged and "
            "reports answer 503 until a rebuild succeeds: run it again",
            err=True,
        )
        sys.stderr.flush()
        raise typer.Exit(code=1) from exc
