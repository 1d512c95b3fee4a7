"""Profile the service processes during one extra, untimed run with py-spy, and boil each
profile down to where the CPU went: by package, and the functions with the most samples
of their own.

py-spy reads each process from outside (nothing is loaded into the services) and keeps
only the samples where the thread held the GIL, so a sample stands for CPU spent, not
waiting. A sampling profiler also leaves the cost of a call where it falls: a
deterministic one (cProfile) charges every Python call, which overstates code made of
many small calls such as FastAPI's dependency resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bench.common import REPO, cpu_seconds

T = TypeVar("T")
RATE = 200  # samples a second in each process
TOP = 12
EVENT_LOOP = "event loop (C)"


def py_spy() -> str:
    """The py-spy installed beside this interpreter (the dev lock pins it)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: run `make .venv/.installed-dev`")
    return found


async def profiled(
    processes: Mapping[str, int], directory: Path, work: Awaitable[T]
) -> tuple[T, dict[str, dict[str, Any]]]:
    """Run ``work`` with each of ``processes`` (name: pid) sampled by py-spy: its result,
    and each process's summary with the CPU it used meanwhile (from /proc). A sampler
    that fails is left out of the summaries; its reason is in ``<name>.log``."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    samplers: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name, pid in processes.items():
            samplers[name] = await _start_sampling(name, pid, directory)
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        result = await work
        cpu_used = {name: cpu_seconds(processes[name]) - t for name, t in cpu_before.items()}
    finally:
        for sampler in samplers.values():
            with contextlib.suppress(ProcessLookupError):
                sampler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for sampler in samplers.values():
            try:
                async with asyncio.timeout(30):
                    await sampler.wait()
            except TimeoutError:
                sampler.kill()
                await sampler.wait()
    summaries = {}
    for name, sampler in samplers.items():
        path = directory / f"{name}.txt"
        if sampler.returncode == 0 and path.exists():
            summary = await asyncio.to_thread(summarize, path.read_text())
            summaries[name] = summary | {"cpu_seconds": cpu_used[name]}
    return result, summaries


async def _start_sampling(name: str, pid: int, directory: Path) -> asyncio.subprocess.Process:
    log = (directory / f"{name}.log").open("wb")
    with log:
        sampler = await asyncio.create_subprocess_exec(
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--format",
            "raw",
            "--full-filenames",
            # Only samples where the thread holds the GIL: a thread waiting (the event
            # loop's poll, a socket, a sleep) has let go of it, so a sample is CPU spent.
            # py-spy's own idle test, by the thread's state, misses most of the
            # event loop's waits.
            "--gil",
            # Read the process while it runs rather than pausing it for each sample:
            # four samplers pausing four services would slow a two-core machine down.
            "--nonblocking",
            "--output",
            str(directory / f"{name}.txt"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    # py-spy needs a moment to attach; samples start once it has read the interpreter.
    await asyncio.sleep(0.5)
    if sampler.returncode is not None:
        raise RuntimeError(f"py-spy could not sample {name} (pid {pid}): see {log.name}")
    return sampler


def _frame(frame: str) -> tuple[str, str]:
    """A raw py-spy frame, ``function (filename:line)``: its function and filename."""
    function, _, where = frame.rpartition(" (")
    filename = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    return function, filename


def _group(filename: str) -> str:
    """The package a file belongs to: a site-packages distribution, a part of this repo
    (``services.referrals``), or a stdlib module."""
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


def summarize(raw: str) -> dict[str, Any]:
    """Own samples by package and by function, from py-spy's raw output (one line per
    distinct stack, outermost frame first: ``frame;frame;...;innermost count``).

    A sample counts for its innermost frame, so the C a function calls (pydantic-core,
    asyncpg's protocol, orjson, a socket write) counts as that function's. A sample
    whose innermost frame is the event loop's run call was in the loop's own C (uvloop,
    libuv), holding the GIL.
    """
    total = 0
    groups: dict[str, int] = {}
    functions: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        function, filename = _frame(stack.rsplit(";", 1)[-1])
        if function == "Runner.run" and filename.endswith("asyncio/runners.py"):
            group, where = EVENT_LOOP, EVENT_LOOP
        else:
            group = _group(filename)
            where = f"{group}:{Path(filename).name} {function}"
        samples = int(count)
        total += samples
        groups[group] = groups.get(group, 0) + samples
        functions[where] = functions.get(where, 0) + samples
    return {"samples": total, "groups": _top(groups, total), "functions": _top(functions, total)}


def _top(counts: dict[str, int], total: int) -> list[tuple[str, int, float]]:
    """The ``TOP`` largest counts, each with its samples and its share of ``total``."""
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:TOP]
    return [(name, n, n / total) for name, n in ranked]
