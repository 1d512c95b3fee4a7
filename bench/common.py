"""What every benchmark shares: the machine's description, medians, and wrk.

One ``machine()`` for every script, so RESULTS.md and the per-benchmark notes in
``bench/results/`` describe the hardware the same way.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WRK_SCRIPT = REPO / "bench" / "wrk" / "referrals.lua"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def postgres_version() -> str:
    try:
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "unknown"


def machine() -> dict[str, str]:
    """The hardware and software the figures were measured on, and how busy it was."""
    memory = _first("/proc/meminfo", "MemTotal")
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory.split()[0]) / 1024 / 1024:.1f} GiB" if memory else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres_version(),
        "load_average_at_start": load_average(),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


# --- wrk -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkRun:
    """One wrk run of ``referrals.lua``: what it sent, how fast, how long each took."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "per_second": self.per_second}


def wrk_command(
    url: str,
    *,
    programme: str,
    run_tag: str,
    api_key: str | None,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    local_authority: str = "Wigan",
    pace_ms: float = 0,
    serial_base: int = 0,
) -> list[str]:
    executable = shutil.which("wrk")
    if executable is None:
        raise RuntimeError("wrk is not installed: run `make wrk` (or `make bench`)")
    return [
        executable,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        programme,
        run_tag,
        api_key or "-",
        local_authority,
        str(int(pace_ms)),
        str(serial_base),
    ]


def parse_wrk(stdout: str) -> WrkRun:
    for line in stdout.splitlines():
        if line.startswith("WRKJSON "):
            raw = json.loads(line.removeprefix("WRKJSON "))
            return WrkRun(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                non_2xx=raw["non_2xx"],
                socket_errors=raw["socket_errors"],
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no WRKJSON line:\n{stdout[-2000:]}")


async def run_wrk(url: str, **kwargs: Any) -> WrkRun:
    """Run wrk (its own process) to completion and read its WRKJSON summary."""
    command = wrk_command(url, **kwargs)
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode()[-2000:]}")
    run = parse_wrk(out.decode())
    if run.non_2xx or run.socket_errors:
        # Kept (and shown in RESULTS.md) rather than fatal: an unattended run goes on.
        print(
            f"warning: wrk against {url}: {run.non_2xx} non-2xx answers, "
            f"{run.socket_errors} socket errors",
            file=sys.stderr,
            flush=True,
        )
    return run


# --- CPU used per process ----------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids_named(command: str) -> list[int]:
    """Processes whose command name is ``command`` (e.g. RabbitMQ's ``beam.smp``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
