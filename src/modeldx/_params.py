"""One validator for parameter limits, so every error reads the same way.

Limits are written as data next to the function or class that owns them
(scikit-learn's habit) and checked once, at the public entry point::

    check_params("top_k_neurons", {"k": k}, {"k": Interval(int, 1, None)})
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modeldx.errors import InvalidParameterError


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float) within bounds; ``None`` is unbounded."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or math.isnan(value):
            return False
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return lo_ok and hi_ok

    def describe(self) -> str:
        name = "an int" if self.kind is int else "a float"
        if self.low is None and self.high is None:
            return name
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{name} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    options: tuple

    def __init__(self, *options: Any) -> None:
        object.__setattr__(self, "options", tuple(options))

    def accepts(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Satisfies:
    """Any value for which ``test`` is true; ``text`` says what that means."""

    test: Callable[[Any], bool]
    text: str

    def accepts(self, value: Any) -> bool:
        return bool(self.test(value))

    def describe(self) -> str:
        return self.text


Constraint = Interval | OneOf | Satisfies | type | None


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (
            constraint is not bool and isinstance(value, bool)
        )
    return constraint.accepts(value)


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return constraint.describe()


def check_params(
    owner: str,
    values: Mapping[str, Any],
    limits: Mapping[str, Constraint | Iterable[Constraint]],
) -> None:
    """Raise :class:`InvalidParameterError` for the first value outside its limits.

    Each limit is a constraint or a list of alternatives.
    """
    for name, value in values.items():
        limit = limits[name]
        alternatives = (
            list(limit) if isinstance(limit, list | tuple) else [limit]
        )
        if any(_accepts(c, value) for c in alternatives):
            continue
        expected = " or ".join(_describe(c) for c in alternatives)
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead."
        )
