"""Measure the demo: ``python -m pathways.simulate.measure --people 5000``.

Starts a throw-away platform (its own database, roles and vhost, free ports, as the
test suite does), runs the simulation on it, and prints a Markdown summary: the
machine, how long each step took, and how much CPU each service used. Results depend
on the machine and on what else runs on it, so the summary says both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as host
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from pathways.bootstrap import SERVICES
from pathways.sandbox import Sandbox
from pathways.simulate.main import Options, Outcome, simulate
from pathways.simulate.programme import DEFAULT_SEED
from pathways.supervisor import Supervisor


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process, from /proc (Linux); ``None`` elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = host.processor() or host.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {host.python_version()}"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def summary(outcome: Outcome, cpu: dict[str, float | None], loads: tuple[str, str]) -> str:
    result = outcome.result
    lines = [
        f"# Demo simulation, {outcome.story.people:,} people",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by "
        "`python -m pathways.simulate.measure`.",
        "",
        f"- machine: {machine()}",
        f"- load average at start: {loads[0]}; at end: {loads[1]}",
        f"- every figure matched: {'yes' if outcome.ok else 'NO'}",
        f"- calls: {outcome.calls:,} in {result.seconds:,.0f}s "
        f"({outcome.calls / max(result.seconds, 0.001):,.0f} calls/s); "
        f"reports caught up {outcome.settle_seconds:,.0f}s after the last call; "
        f"{outcome.total_seconds:,.0f}s in all",
        "",
        "| step | items | seconds |",
        "|---|---:|---:|",
        *(f"| {name} | {units:,} | {seconds:,.1f} |" for name, units, seconds in result.phases),
        "",
        "| process | CPU seconds |",
        "|---|---:|",
        *(
            f"| {name} | {'n/a' if seconds is None else f'{seconds:,.1f}'} |"
            for name, seconds in cpu.items()
        ),
        "",
    ]
    return "\n".join(lines)


async def measure(people: int, seed: int, concurrency: int, console: Console) -> str:
    sandbox = Sandbox.new("measure")
    await sandbox.create()
    log_dir = Path(tempfile.mkdtemp(prefix="pathways-measure-"))
    supervisor = Supervisor(sandbox.config, SERVICES, log_dir=log_dir)
    try:
        await supervisor.start()
        ready = await supervisor.wait_ready(timeout=90)
        if not all(ready.values()):
            raise RuntimeError(f"platform not ready: {ready} (logs in {log_dir})")
        pids = {name: child.pid for name, child in supervisor.children.items()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        own_before = sum(os.times()[:2])
        start_load = load()
        options = Options(
            gateway_url=sandbox.config.gateway_url,
            admin_token=sandbox.config.admin_token,
            people=people,
            seed=seed,
            concurrency=concurrency,
        )
        outcome = await simulate(options, console)
        cpu: dict[str, float | None] = {}
        for name, pid in pids.items():
            now, then = cpu_seconds(pid), before[name]
            cpu[name] = None if now is None or then is None else now - then
        cpu["simulator (this process)"] = sum(os.times()[:2]) - own_before
        return summary(outcome, cpu, (start_load, load()))
    finally:
        await supervisor.stop()
        await sandbox.destroy()


def main() -> None:  # pragma: no cover - a command
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--out", type=Path, help="also write the summary to this file")
    args = parser.parse_args()
    console = Console(stderr=True)
    text = asyncio.run(measure(args.people, args.seed, args.concurrency, console))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":  # pragma: no cover
    main()
