"""Numbers from users: finite, in range, whole where they count something; errors name the value."""
from __future__ import annotations

import math
import numbers

from ..errors import ModelError

SEED_MAX = 2**64 - 1  # torch.Generator takes 64-bit seeds


def finite(value, name: str, low: float | None = None, high: float | None = None, *,
           above: float | None = None) -> float:
    """`value` as a float, finite and within [low, high] (or > above); a ModelError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ModelError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        bounds = f" {_range(low, high)}" if low is not None or high is not None else ""
        raise ModelError(f"{name} must be a finite number{bounds}, got {value!r}")
    if above is not None and not number > above:
        raise ModelError(f"{name} must be more than {above:g}{_upto(high)}, got {number:g}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise ModelError(f"{name} must be {_range(low, high)}, got {number:g}")
    return number


def whole(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int within [low, high]; floats and bools are refused (a count is never 2.5 or True)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ModelError(f"{name} must be a whole number, got {value!r}")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ModelError(f"{name} must be a whole number {_range(low, high, 'd')}, got {number}")
    return number


def seed(value, count: int = 1) -> int:
    """A seed that `count` consecutive variations (seed, seed + 1, ...) can all use."""
    return whole(value, "seed", 0, SEED_MAX - (count - 1))


def _range(low, high, style: str = "g") -> str:
    if low is not None and high is not None:
        return f"from {low:{style}} to {high:{style}}"
    return f"at least {low:{style}}" if low is not None else f"at most {high:{style}}"


def _upto(high) -> str:
    return f" and at most {high:g}" if high is not None else ""
