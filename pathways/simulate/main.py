"""One simulation from start to finish: build the story, play it through the gateway,
wait for the reports, compare, print. Used by ``pathways simulate``, ``pathways demo``
and the tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from pathways.simulate.client import Gateway
from pathways.simulate.compare import Mismatch, Observed, settle
from pathways.simulate.display import print_results, print_story
from pathways.simulate.expected import Expectations, expectations
from pathways.simulate.programme import DEFAULT_PEOPLE, DEFAULT_SEED, OFFICE
from pathways.simulate.rules import uk_today
from pathways.simulate.runner import RunResult, Simulation
from pathways.simulate.story import Story, build_story


@dataclass(frozen=True)
class Options:
    gateway_url: str
    admin_token: str
    people: int = DEFAULT_PEOPLE
    seed: int = DEFAULT_SEED
    concurrency: int = 24
    as_of: date | None = None
    programme: str | None = None
    report_timeout: float = 300.0
    progress: bool = True

    def programme_code(self) -> str:
        return self.programme or f"working-well-sim-s{self.seed}-n{self.people}"


@dataclass
class Outcome:
    story: Story
    result: RunResult
    expected: Expectations
    observed: Observed
    mismatches: list[Mismatch]
    settle_seconds: float
    total_seconds: float
    calls: int  # every call made through the gateway

    @property
    def programme(self) -> str:
        return self.result.platform.programme

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.result.failures

    @property
    def office_key(self) -> str:
        return self.result.platform.partners[OFFICE].token


class GatewayUnavailable(Exception):
    pass


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<42}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


async def simulate(options: Options, console: Console | None = None) -> Outcome:
    """Run one simulation against the gateway at ``options.gateway_url``."""
    console = console or Console()
    as_of = options.as_of or uk_today()
    if as_of > uk_today():
        raise ValueError("as_of may not be in the future: business dates never are")
    started = time.monotonic()
    story = build_story(options.people, options.seed, as_of)
    print_story(console, story)
    gateway = Gateway(options.gateway_url, concurrency=options.concurrency)
    try:
        if not await gateway.health():
            raise GatewayUnavailable(f"no Pathways gateway answers at {options.gateway_url}")
        with _progress(console, options.progress) as progress:
            simulation = Simulation(
                story,
                gateway,
                admin_token=options.admin_token,
                programme_code=options.programme_code(),
                concurrency=options.concurrency,
                progress=progress,
            )
            result = await simulation.run()
            expected = expectations(story, provider_key=result.platform.provider_ids())
            task = progress.add_task("reports catching up with events", total=None)

            def waiting(headline: dict, seconds: float) -> None:
                progress.update(
                    task,
                    description=(
                        f"reports catching up: {headline.get('attachments') or 0:,} of "
                        f"{expected.performance['all']['attachments']:,} attachments"
                    ),
                )

            observed, mismatches, settle_seconds = await settle(
                gateway,
                result.platform.partners[OFFICE],
                result.platform.programme,
                as_of,
                expected,
                timeout=options.report_timeout,
                on_wait=waiting,
            )
            progress.update(task, total=1, completed=1, description="reports fetched")
        result.phases.append(("waiting for the reports", 10, settle_seconds))
        outcome = Outcome(
            story,
            result,
            expected,
            observed,
            mismatches,
            settle_seconds,
            time.monotonic() - started,
            gateway.stats.total,
        )
        print_results(console, story, expected, observed, mismatches, result, gateway.stats)
        print_verdict(console, outcome, options.gateway_url, as_of)
        return outcome
    finally:
        await gateway.aclose()


def dashboard_url(gateway_url: str, programme: str, as_of: date) -> str:
    query = urlencode({"programme": programme, "as_of": as_of.isoformat()})
    return f"{gateway_url.rstrip('/')}/dashboard?{query}"


def print_verdict(console: Console, outcome: Outcome, gateway_url: str, as_of: date) -> None:
    console.print()
    if outcome.ok:
        console.print(
            f"[bold green]Every figure matches the story[/] ({outcome.story.people:,} people, "
            f"{outcome.total_seconds:,.0f}s in all; the reports caught up "
            f"{outcome.settle_seconds:,.0f}s after the last call)."
        )
    else:
        console.print(
            f"[bold red]{len(outcome.mismatches):,} figure(s) differ and "
            f"{len(outcome.result.failures):,} step(s) went wrong[/] — see above."
        )
    console.print(
        f"\nDashboard: [link]{dashboard_url(gateway_url, outcome.programme, as_of)}[/link]\n"
        f"Sign in with the programme office's API key: {outcome.office_key}\n"
        f"(programme [bold]{outcome.programme}[/], figures as of {as_of})"
    )
