"""Exact rates and means (contract §6) and small-number suppression.

Rates are exact fractions rounded half-up to 4 decimal places, computed with integers
so that 1/8 is 0.1250 and 1/32 is 0.0313, never a float's near miss.
"""

from __future__ import annotations

from decimal import Decimal

PLACES = 4
_SCALE = 10**PLACES


def rate(numerator: int | None, denominator: int | None) -> Decimal | None:
    """``numerator / denominator`` rounded half-up to 4 dp; ``None`` for a zero or
    unknown denominator, or an unknown numerator."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if numerator < 0 or denominator < 0:
        raise ValueError("rates are of counts, which are never negative")
    scaled = (2 * numerator * _SCALE + denominator) // (2 * denominator)
    return Decimal(scaled).scaleb(-PLACES)


def mean(total: int, count: int) -> Decimal | None:
    """A mean of counts, rounded half-up to 4 dp; ``None`` over nobody."""
    return rate(total, count)


def suppressed(count: int | None, threshold: int | None) -> int | None:
    """``count`` blanked (``None``) when it is below ``threshold`` (``suppress_below``).

    Zero is below any positive threshold and is blanked too: an exact zero in a small
    group discloses as much about its members as a one does.
    """
    if count is None or threshold is None:
        return count
    return None if count < threshold else count


def as_float(value: Decimal | None) -> float | None:
    """A 4-dp decimal as the JSON number partners read (``0.0129``)."""
    return None if value is None else float(value)
