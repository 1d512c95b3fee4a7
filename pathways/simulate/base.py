"""What every part of playing a story shares: the platform's answers so far (ids,
keys), the failures recorded, and running a step for many items at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pathways.simulate.client import ApiError, Credentials, Gateway
from pathways.simulate.story import Referral, Refusal, Story

T = TypeVar("T")


class Progress(Protocol):
    """What the runner needs of a progress display (rich's Progress has it)."""

    def add_task(self, description: str, total: float | None = ...) -> Any: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...

    def update(self, task_id: Any, **kwargs: Any) -> None: ...


class NoProgress:
    def add_task(self, description: str, total: float | None = None) -> int:
        return 0

    def advance(self, task_id: Any, advance: float = 1) -> None:
        pass

    def update(self, task_id: Any, **kwargs: Any) -> None:
        pass


@dataclass(frozen=True)
class Failure:
    step: str
    subject: str  # a story key (R000123, P000045, P000045-C2) or a sync batch
    message: str


@dataclass
class Platform:
    """What the platform gave the story: partner keys and the ids of what was made."""

    programme: str = ""
    partners: dict[str, Credentials] = field(default_factory=dict)
    referrals: dict[str, str] = field(default_factory=dict)
    participants: dict[str, str] = field(default_factory=dict)
    episodes: dict[tuple[str, int], str] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)

    def provider_ids(self) -> dict[str, str]:
        return {
            handle: creds.partner_id or ""
            for handle, creds in self.partners.items()
            if creds.kind == "provider"
        }


@dataclass
class RunResult:
    platform: Platform
    failures: list[Failure]
    phases: list[tuple[str, int, float]]  # name, units, seconds
    lag_retries: int
    sync_counts: dict[str, int]
    seconds: float  # the whole run, wall clock (session syncs overlap casework)


class Missing(Exception):
    """A step depends on one that failed earlier (its id is unknown)."""


class Player:
    """Plays part of a story through the gateway; see :class:`runner.Simulation`."""

    story: Story
    gateway: Gateway
    concurrency: int
    progress: Progress
    platform: Platform
    failures: list[Failure]
    phases: list[tuple[str, int, float]]

    def who(self, handle: str) -> Credentials:
        return self.platform.partners[handle]

    def fail(self, step: str, subject: str, message: str) -> None:
        self.failures.append(Failure(step, subject, message))

    def referral_id(self, referral: Referral) -> str:
        try:
            return self.platform.referrals[referral.key]
        except KeyError:
            raise Missing(f"referral {referral.key} was not made") from None

    def participant_id(self, key: str) -> str:
        try:
            return self.platform.participants[key]
        except KeyError:
            raise Missing(f"participant {key} was not attached") from None

    async def phase(
        self,
        name: str,
        items: Sequence[T],
        step: Callable[[T], Awaitable[None]],
        subject: Callable[[T], str],
        *,
        workers: int | None = None,
    ) -> None:
        """Run ``step`` for every item with a bounded pool of workers, recording (not
        raising) whatever goes wrong with an item."""
        task = self.progress.add_task(name, total=len(items))
        started = time.monotonic()
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                try:
                    await step(item)
                except ApiError as exc:
                    self.fail(name, subject(item), str(exc))
                except Missing as exc:
                    self.fail(name, subject(item), f"skipped: {exc}")
                except Exception as exc:  # a bug or a broken connection: keep going
                    self.fail(name, subject(item), f"{type(exc).__name__}: {exc}")
                self.progress.advance(task)

        count = min(workers or self.concurrency, max(1, len(items)))
        await asyncio.gather(*(worker() for _ in range(count)))
        self.phases.append((name, len(items), time.monotonic() - started))

    async def list_all(
        self, who: Credentials, path: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.gateway.call(
                who,
                "GET",
                path,
                params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})},
            )
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def subject_of(item: Any) -> str:
    """The story key an item is known by in failures."""
    if isinstance(item, Refusal):
        return item.referral.key
    return str(getattr(item, "key", item))


def expect_field(problem: Any, field_name: str) -> None:
    """A 422 must name the field that was wrong (contract §7)."""
    fields = [e.get("field") for e in (problem or {}).get("errors") or []]
    if field_name not in fields:
        raise AssertionError(f"the 422 named {fields}, not {field_name}")
