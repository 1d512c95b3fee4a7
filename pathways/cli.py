"""``pathways``: run the platform, set up its database, look after its queues."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import typer

from pathways import bootstrap as db_bootstrap
from pathways.config import local_platform
from pathways.preflight import preflight
from pathways.supervisor import Supervisor, run_until_signalled

app = typer.Typer(
    help="Pathways platform commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _require_infrastructure(config) -> None:
    failed = [check for check in asyncio.run(preflight(config)) if not check.ok]
    for check in failed:
        typer.echo(check.message, err=True)
    if failed:
        raise typer.Exit(code=2)


def _setup(config) -> None:
    typer.echo(f"database {config.database}: creating roles and schemas, migrating ...")
    asyncio.run(
        db_bootstrap.bootstrap(
            config.admin_dsn,
            config.database,
            config.logins,
            host=config.db_host,
            port=config.db_port,
        )
    )


@app.command()
def bootstrap() -> None:
    """Create the database, one role and schema per service, and apply every migration."""
    config = local_platform()
    _require_infrastructure(config)
    _setup(config)
    typer.echo("done")


@app.command()
def run() -> None:
    """Set up (idempotently) and run the gateway and every service until Ctrl-C/SIGTERM."""
    config = local_platform()
    try:
        if httpx.get(f"{config.gateway_url}/health", timeout=1).status_code == 200:
            typer.echo(f"Pathways is already running at {config.gateway_url}")
            return
    except httpx.HTTPError:
        pass
    _require_infrastructure(config)
    _setup(config)
    supervisor = Supervisor(config, db_bootstrap.SERVICES)

    def announce(ready: dict[str, bool]) -> None:
        for name, ok in ready.items():
            typer.echo(f"  {name:<10} {config.url(name):<24} {'ready' if ok else 'NOT READY'}")
        typer.echo(
            f"\nPathways gateway: {config.gateway_url}   (API docs: {config.gateway_url}/docs)"
        )
        typer.echo(f"Admin token:      {config.admin_token}")
        typer.echo("Stop with Ctrl-C (or SIGTERM).")
        sys.stdout.flush()

    asyncio.run(run_until_signalled(supervisor, on_ready=announce))


def _amqp_url() -> str:
    # In a container the broker comes from the environment, and the filesystem may be
    # read-only: only fall back to the local setup (which may write secrets) if unset.
    return os.environ.get("PATHWAYS_AMQP_URL") or local_platform().amqp_url


dlq_app = typer.Typer(
    help="Dead-letter queues: see what failed, re-drive after a fix.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    service: str = typer.Argument(..., help="gateway, referrals, casework, ..."),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Show the dead letters waiting for SERVICE (they stay in the queue)."""
    from pathways import dlq

    letters = asyncio.run(dlq.peek(_amqp_url(), service, limit))
    if not letters:
        typer.echo(f"no dead letters for {service}")
    for letter in letters:
        typer.echo(
            f"{letter.failed_at}  {letter.routing_key}  attempts={letter.attempts}  "
            f"{letter.message_id}\n    {letter.error}"
        )


@dlq_app.command("redrive")
def dlq_redrive(
    service: str = typer.Argument(..., help="gateway, referrals, casework, ..."),
    limit: int | None = typer.Option(None, min=1),
) -> None:
    """Move SERVICE's dead letters back onto its queue to be handled again."""
    from pathways import dlq

    moved = asyncio.run(dlq.redrive(_amqp_url(), service, limit))
    typer.echo(f"re-drove {moved} event(s) to pathways.{service}")


# `pathways migrate`: the one-shot database job of docker-compose and Kubernetes.
from pathways.migrate_job import migrate_command  # noqa: E402

app.command("migrate")(migrate_command)


# `pathways reports rebuild`: replay reporting's event log into fresh projections.
from services.reporting.cli import cli as reports_cli  # noqa: E402

app.add_typer(reports_cli, name="reports")


# `pathways simulate` and `pathways demo`: a simulated programme through the gateway.
from pathways.simulate.cli import demo_command, simulate_command  # noqa: E402

app.command("simulate")(simulate_command)
app.command("demo")(demo_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
