"""``pathways demo``: it uses a platform that is already running and leaves it running,
or starts one itself (as ``pathways run`` would) and stops it when asked."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from pathways.bootstrap import SERVICES
from pathways.sandbox import Sandbox
from pathways.simulate.local import demo, gateway_is_up
from pathways.simulate.main import Options
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.platform


@pytest.fixture
def console(tmp_path: Path):
    with (tmp_path / "out.txt").open("w") as out:
        yield Console(file=out, width=160, force_terminal=False)


async def test_the_demo_uses_a_running_platform_and_leaves_it_running(
    platform: RunningPlatform, tmp_path: Path, console: Console
) -> None:
    # A story ending on an earlier date: the reports are read as of that date.
    options = Options(
        gateway_url=platform.gateway_url,
        admin_token=platform.admin_token,
        people=40,
        seed=3,
        as_of=date(2025, 3, 31),
        progress=False,
        report_timeout=60,
    )
    outcome = await demo(platform.config, options, console, keep_running=False)
    console.file.flush()
    assert outcome.ok, (outcome.result.failures, outcome.mismatches)
    assert outcome.story.as_of == date(2025, 3, 31)
    assert outcome.story.timeline.last_referral_day == date(2022, 12, 31)
    assert "already running" in (tmp_path / "out.txt").read_text()
    assert await gateway_is_up(platform.gateway_url)


async def test_the_demo_starts_the_platform_when_none_runs_and_can_stop_it(
    tmp_path: Path, console: Console
) -> None:
    sandbox = Sandbox.new("demo")
    # A second platform runs beside the suite's: small connection pools keep the two
    # within PostgreSQL's connection limit.
    sandbox.config.extra_env.update(
        {f"{service.upper()}_DATABASE_POOL_SIZE": "4" for service in SERVICES}
    )
    # The demo sets up the database itself (roles, schemas, migrations), as `make run`
    # does; the sandbox only provides the empty vhost it would find on a fresh machine.
    try:
        await sandbox.create()
        config = sandbox.config
        assert not await gateway_is_up(config.gateway_url)
        options = Options(
            gateway_url=config.gateway_url,
            admin_token=config.admin_token,
            people=40,
            seed=5,
            concurrency=8,
            progress=False,
            report_timeout=60,
        )
        outcome = await demo(
            config,
            options,
            console,
            keep_running=False,
            log_dir=tmp_path / "logs",
        )
        assert outcome.ok, (outcome.result.failures, outcome.mismatches)
        console.file.flush()
        printed = (tmp_path / "out.txt").read_text()
        assert "Starting Pathways" in printed and "Every figure matches the story" in printed
        assert (tmp_path / "logs" / "gateway.log").exists()
        # --stop-when-done: nothing is left running.
        assert not await gateway_is_up(config.gateway_url)
    finally:
        await sandbox.destroy()
