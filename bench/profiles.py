"""Profile the service processes during one extra, untimed run (cProfile, switched on and
off by signal: see bench/profiling/sitecustomize.py), and boil each profile down to
where the time went: by package, and the functions with the most time of their own."""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from bench.common import REPO

T = TypeVar("T")
HOOK_DIR = REPO / "bench" / "profiling"
TOP = 12


def profiling_env(directory: Path) -> dict[str, str]:
    """Environment that loads the cProfile hook into every service process."""
    existing = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": f"{HOOK_DIR}{os.pathsep}{existing}" if existing else str(HOOK_DIR),
        "BENCH_PROFILE_DIR": str(directory),
    }


async def profiled(
    supervisor: Any, directory: Path, services: Iterable[str], work: Awaitable[T]
) -> tuple[T, dict[str, dict[str, Any]]]:
    """Run ``work`` with ``services`` profiled; its result and each service's summary."""
    names = list(services)
    started = time.time()
    for name in names:
        supervisor.signal_child(name, signal.SIGUSR1)
    try:
        result = await work
    finally:
        for name in names:
            supervisor.signal_child(name, signal.SIGUSR2)
    summaries: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    for name in names:
        path = directory / f"{name}.prof"
        while not (path.exists() and path.stat().st_mtime >= started - 1):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        else:
            summaries[name] = await asyncio.to_thread(summarize, path)
    return result, summaries


def _group(filename: str, function: str) -> str:
    if filename == "~":  # C functions: name them by what they are
        if "asyncpg" in function or "Protocol" in function:
            return "asyncpg (C)"
        if "orjson" in function:
            return "orjson (C)"
        if "pydantic_core" in function or "validate_" in function:
            return "pydantic-core (C)"
        return "other C built-ins"
    if "site-packages/" in filename:
        package = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        return package.removesuffix(".py").split(".")[0]
    if filename.startswith(str(REPO)):
        parts = Path(filename).relative_to(REPO).with_suffix("").parts
        return ".".join(parts[:2])
    if "/lib/python" in filename:
        rest = filename.split("/lib/python", 1)[1].split("/", 1)
        module = rest[1] if len(rest) > 1 else filename
        return "stdlib " + module.split("/", 1)[0].removesuffix(".py")
    return filename


def summarize(path: Path) -> dict[str, Any]:
    stats = pstats.Stats(str(path))
    total = stats.total_tt or 1e-9  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    functions = []
    for (filename, line, function), (_, calls, own, _cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        group = _group(filename, function)
        groups[group] = groups.get(group, 0.0) + own
        where = (
            function
            if filename == "~"
            else f"{_group(filename, function)}:{Path(filename).name}:{line} {function}"
        )
        functions.append((own, calls, where))
    functions.sort(reverse=True)
    return {
        "seconds": total,
        "groups": sorted(((name, s, s / total) for name, s in groups.items()), key=lambda g: -g[1])[
            :TOP
        ],
        "functions": [(where, own, own / total, calls) for own, calls, where in functions[:TOP]],
    }
