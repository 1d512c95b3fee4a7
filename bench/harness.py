"""The platform the benchmark runs against, started as ``make run`` starts it, and the
floor process beside it.

The platform is :func:`tests.support.platform.start_platform` (every service its own
uvicorn process with uvloop and httptools, in a sandbox of its own) with what the test
suite turns down for sharing a machine turned back up: production retry delays and
outbox polling, bigger database pools, and rate limits that cannot bite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from pathways.bootstrap import SERVICES
from pathways.sandbox import free_port
from tests.support.builders import referral_body
from tests.support.gateway import Gateway, Partner
from tests.support.platform import RunningPlatform, start_platform

REPO = Path(__file__).resolve().parent.parent
# Probe referrals for the event-lag figure each live in one of these local authorities,
# all covered by the bench provider, so the report grouped by local authority tells
# the probes apart (see bench.event_lag).
PROBE_AREAS = [f"Probe {n:02d}" for n in range(50)]
# Connections per service pool (SQLAlchemy adds as many again as overflow). PostgreSQL
# allows 100 in all by default, shared with anything else on the machine (a test run
# holds about 50): the services that take the load keep the default 5, the others less.
# On two cores more connections would not make PostgreSQL faster, only queue there.
POOL_SIZES = {"gateway": 3, "referrals": 5, "casework": 5, "outcomes": 2, "reporting": 3}
UNLIMITED = {"per_second": 1_000_000, "burst": 1_000_000}


def platform_env() -> dict[str, str]:
    return {
        # The defaults of a real deployment, not the test suite's.
        "PATHWAYS_RETRY_DELAYS_MS": "[1000, 5000, 30000, 120000]",
        "PATHWAYS_OUTBOX_POLL_SECONDS": "0.25",
        **{
            f"{service.upper()}_DATABASE_POOL_SIZE": str(POOL_SIZES[service])
            for service in SERVICES
        },
        # Measure the platform, not its rate limiter.
        "GATEWAY_RATE_LIMITS": json.dumps(
            {
                kind: UNLIMITED
                for kind in ("jcp", "probation", "treatment", "provider", "programme_office")
            }
        ),
    }


@dataclass
class Bench:
    platform: RunningPlatform
    programme: str
    referrer: Partner
    provider: Partner
    office: Partner
    # Referrals answered 2xx so far (new people all: none a duplicate), so a stage can
    # wait until the report counts them all before it starts.
    referrals_sent: int = 1

    @property
    def gateway_url(self) -> str:
        return self.platform.gateway_url


async def _set_up(platform: RunningPlatform) -> Bench:
    """Partners and a programme made through the admin API, as in production."""
    gateway = Gateway(platform.gateway_url, platform.admin_token)
    try:
        referrer = await gateway.create_partner("jcp", "Bench Jobcentre")
        provider = await gateway.create_partner("provider", "Bench provider")
        office = await gateway.create_partner("programme_office", "Bench programme office")
        defined = await gateway.define_programme({provider: ["Wigan", *PROBE_AREAS]})
    finally:
        await gateway.aclose()
    bench = Bench(platform, defined["code"], referrer, provider, office)
    # The definition is in force for calls made after the admin call (contract §8); one
    # accepted referral proves the whole path before anything is timed.
    async with referrer.client() as client:
        response = await client.post("/v1/referrals", json=referral_body(bench.programme))
        if response.status_code != 201 or response.json()["status"] not in ("accepted",):
            raise RuntimeError(f"set-up referral: {response.status_code} {response.text[:300]}")
    return bench


@contextlib.asynccontextmanager
async def running_platform(log_dir: Path) -> AsyncIterator[Bench]:
    """The platform, set up."""
    async with start_platform(log_dir / "platform", label="bench", extra_env=platform_env()) as p:
        yield await _set_up(p)


@contextlib.asynccontextmanager
async def floor_server(
    database: str,
    log_dir: Path,
    *,
    app: str = "bench.floor:app",
    amqp_url: str | None = None,
) -> AsyncIterator[tuple[str, int]]:
    """A floor (``app``: bench/floor.py, or bench/floor_outbox.py with ``amqp_url``) as
    its own uvicorn process (uvloop, httptools, one worker) writing to ``database`` (its
    own ``floor`` schema), as PostgreSQL's superuser: its URL and process id."""
    port = free_port()
    name = app.split(":")[0].rsplit(".", 1)[-1]
    log_path = log_dir / f"{name}.log"
    env = {**os.environ, "FLOOR_DSN": f"postgresql://postgres@127.0.0.1:5432/{database}"}
    if amqp_url is not None:
        env["FLOOR_AMQP_URL"] = amqp_url
    await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the floor did not start; see {log_path}")
                await asyncio.sleep(0.2)
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
