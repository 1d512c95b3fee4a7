"""bench.profiles: py-spy's samples boiled down to where a process spent its CPU."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from bench.common import REPO
from bench.profiles import profiled, summarize

SITE = "/srv/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def test_own_samples_go_to_the_innermost_frame_by_package_and_function() -> None:
    raw = "\n".join(
        [
            f"run (/app/main.py:3);solve ({SITE}/fastapi/dependencies/utils.py:570) 30",
            f"run (/app/main.py:3);solve ({SITE}/fastapi/dependencies/utils.py:601) 10",
            f"run (/app/main.py:3);submit ({REPO}/services/referrals/api.py:88) 35",
            f"run (/app/main.py:3);select ({STDLIB}/selectors.py:468) 25",
        ]
    )
    summary = summarize(raw + "\n")
    assert summary["samples"] == 100
    assert summary["groups"] == [
        ("fastapi", 40, 0.4),
        ("services.referrals", 35, 0.35),
        ("stdlib selectors", 25, 0.25),
    ]
    # One function's samples on different lines count together; the caller's none.
    assert summary["functions"] == [
        ("fastapi:utils.py solve", 40, 0.4),
        ("services.referrals:api.py submit", 35, 0.35),
        ("stdlib selectors:selectors.py select", 25, 0.25),
    ]


def test_the_event_loops_own_c_is_named_as_such() -> None:
    loop = f"<module> (/app/main.py:4);Runner.run ({STDLIB}/asyncio/runners.py:118)"
    summary = summarize(f"{loop} 3\n{loop};handle ({REPO}/shared/consumer.py:9) 1\n")
    assert summary["groups"] == [("event loop (C)", 3, 0.75), ("shared.consumer", 1, 0.25)]


def test_function_names_with_spaces_and_odd_lines_are_read_right() -> None:
    raw = (
        f"<module> (/app/main.py:1);<lambda> ({SITE}/pydantic/main.py:12) 3\n\nnot a sample line\n"
    )
    summary = summarize(raw)
    assert summary["samples"] == 3
    assert summary["functions"] == [("pydantic:main.py <lambda>", 3, 1.0)]


def test_no_samples_is_an_empty_profile_not_a_division_by_zero() -> None:
    assert summarize("") == {"samples": 0, "groups": [], "functions": []}


async def test_a_busy_process_is_sampled_from_outside_and_its_hot_function_named(
    tmp_path: Path,
) -> None:
    script = tmp_path / "burner.py"
    script.write_text(
        textwrap.dedent(
            """
            import time

            def burn():
                total = 0
                for i in range(200_000):
                    total += i * i
                return total

            def rest():
                time.sleep(0.01)

            print("ready", flush=True)
            while True:
                burn()
                rest()
            """
        )
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"ready\n"  # its start-up is not what we sample
    try:
        result, summaries = await profiled(
            {"burner": child.pid}, tmp_path / "profiles", asyncio.sleep(2, result="done")
        )
    finally:
        child.kill()
        await child.wait()
    assert result == "done"
    burner = summaries["burner"]
    assert burner["samples"] > 50
    assert burner["cpu_seconds"] > 0.5  # from /proc, over the two seconds sampled
    functions = {where: share for where, _, share in burner["functions"]}
    # About as long asleep as burning, but a sleeping thread lets go of the GIL and its
    # samples are left out (py-spy may catch the odd one going into or out of it).
    assert functions[f"{script}:burner.py burn"] > 0.8
    assert functions.get(f"{script}:burner.py rest", 0.0) < 0.15


async def test_a_process_that_is_gone_is_a_clear_error(tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    work = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match=r"py-spy could not sample gone"):
        await profiled({"gone": child.pid}, tmp_path, work)
    work.close()
