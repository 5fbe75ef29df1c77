"""Named controls a user moves while a session runs: float sliders, choices and buttons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modeldx.errors import InvalidParameterError


@dataclass
class Slider:
    """A float in ``[low, high]``; ``log=True`` means the dashboard moves it on a log scale."""

    name: str
    low: float
    high: float
    value: float
    log: bool = False
    kind: str = field(default="slider", init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise InvalidParameterError(f"slider {self.name!r} needs finite bounds low < high. "
                                        f"Got low={self.low}, high={self.high}.")
        if self.log and self.low <= 0:
            raise InvalidParameterError(f"log slider {self.name!r} needs low > 0. Got {self.low}.")
        self.value = self.check(self.value)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidParameterError(f"slider {self.name!r} takes a finite number. Got {value!r}.")
        if not self.low <= value <= self.high:
            raise InvalidParameterError(
                f"slider {self.name!r} takes a value in [{self.low:g}, {self.high:g}]. Got {value!r}.")
        return float(value)

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "low": self.low, "high": self.high,
                "value": self.value, "log": self.log}


@dataclass
class Choice:
    """One of a fixed list of options."""

    name: str
    options: list
    value: Any = None
    kind: str = field(default="choice", init=False)

    def __post_init__(self) -> None:
        if not self.options:
            raise InvalidParameterError(f"choice {self.name!r} needs at least one option.")
        self.value = self.options[0] if self.value is None else self.check(self.value)

    def check(self, value: Any) -> Any:
        if value not in self.options:
            raise InvalidParameterError(f"choice {self.name!r} takes one of {self.options}. Got {value!r}.")
        return value

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "options": list(self.options), "value": self.value}


@dataclass
class Button:
    """Pressing it counts; the step function sees how often it was pressed since the last step."""

    name: str
    value: int = 0
    kind: str = field(default="button", init=False)

    def check(self, value: Any) -> int:
        return self.value + 1

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "value": self.value}


Control = Slider | Choice | Button
