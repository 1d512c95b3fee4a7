"""Drawing from a seeded random generator, and what every part of the story
generator shares (the generator, the timeline, numbering)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from pathways.simulate.records import Participant, Timeline
from pathways.simulate.rules import age_on


def pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def band(age: int) -> str:
    return "18-24" if age <= 24 else "25-34" if age <= 34 else "35-49" if age <= 49 else "50+"


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def birth_date(rng: random.Random, age: int, on: date) -> date:
    """A date of birth giving exactly ``age`` whole years on ``on``."""
    latest = years_before(on, age)
    earliest = years_before(on, age + 1) + timedelta(days=1)
    dob = earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))
    assert age_on(dob, on) == age
    return dob


class Numbers:
    """Running numbers by name (external refs, session ids, evidence references)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        self._next[name] = self._next.get(name, 0) + 1
        return self._next[name]


class Context:
    """What the parts of the generator share. One random generator, drawn from in a
    fixed order, is what makes a story the same every time."""

    rng: random.Random
    timeline: Timeline
    numbers: Numbers
    participants: list[Participant]
    # Per participant, which of its episodes are which (job start, mini job, ...).
    plans: dict[str, dict[str, Any]]
