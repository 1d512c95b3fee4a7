"""Waiting out the lag between services (contract §8).

A service that has not yet heard of something a request refers to (a referral another
service accepted a moment ago, a programme just defined) waits for it briefly, polling
its own schema, before answering on what it knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    fetch: Callable[[], Awaitable[T | None]], *, timeout: float, interval: float = 0.05
) -> T | None:
    """Call ``fetch`` until it returns something other than ``None`` or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await fetch()
        if found is not None or loop.time() >= deadline:
            return found
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        interval = min(interval * 1.5, 0.5)
