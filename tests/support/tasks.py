"""Checks on long-running loops (relays, dispatchers) as the services run them."""

from __future__ import annotations

import asyncio


async def assert_stops_if_cancelled_as_woken(
    running: asyncio.Task[None], wake: asyncio.Event, what: str
) -> None:
    """Cancel ``running`` in the same moment ``wake`` is set, and require that it stops.

    This is what shutdown does to a loop that is busy being woken. On Python 3.11,
    ``asyncio.wait_for`` swallows a cancel that lands this way, and the loop never ends.
    """
    assert not running.done(), f"{what} was not running"
    wake.set()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=5)
    assert running in done, f"{what} kept running after it was cancelled"
    assert running.cancelled()
