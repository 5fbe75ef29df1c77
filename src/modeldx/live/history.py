"""Bounded-memory histories of streamed values: downsampled as they grow, never truncated.

A scalar history keeps at most ``capacity`` points. When it is full, adjacent
pairs merge (the mean of their values at the later step, with the min and max of
what they cover), and each later point averages twice as many steps as before.
So a run of a million steps is still drawn from its first step to its last, at a
resolution of ``steps / capacity``, in memory fixed up front.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from modeldx.errors import InvalidParameterError


@dataclass
class ScalarPoint:
    step: int
    value: float
    low: float
    high: float


class ScalarHistory:
    """A downsampling history of one scalar stream."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 4 or capacity % 2:
            raise InvalidParameterError(f"capacity must be an even number >= 4. Got {capacity}.")
        self.capacity = capacity
        self.stride = 1  # steps per stored point
        self.points: list[ScalarPoint] = []
        self._bucket: list[tuple[int, float]] = []
        self.lock = threading.Lock()

    def add(self, step: int, value: float) -> ScalarPoint | None:
        """Add one value; returns the point it completed, if any (what to push to browsers)."""
        with self.lock:
            self._bucket.append((int(step), float(value)))
            if len(self._bucket) < self.stride:
                return None
            values = [v for _, v in self._bucket]
            point = ScalarPoint(self._bucket[-1][0], float(np.mean(values)), min(values), max(values))
            self._bucket = []
            self.points.append(point)
            if len(self.points) >= self.capacity:
                self._halve()
            return point

    def _halve(self) -> None:
        merged = []
        for a, b in zip(self.points[::2], self.points[1::2], strict=True):
            merged.append(ScalarPoint(b.step, (a.value + b.value) / 2, min(a.low, b.low),
                                      max(a.high, b.high)))
        self.points = merged
        self.stride *= 2

    def snapshot(self) -> dict:
        with self.lock:
            pts = list(self.points)
            return {"step": [p.step for p in pts], "value": [p.value for p in pts],
                    "low": [p.low for p in pts], "high": [p.high for p in pts], "stride": self.stride}


class ValueHistory:
    """The latest value of a non-scalar stream (histogram, image grid, matrix, table) and a few past ones.

    Keeps at most ``capacity`` past values, thinned the same way as scalars:
    when full, every other one is dropped and later ones are kept half as often.
    """

    def __init__(self, capacity: int = 32) -> None:
        if capacity < 4 or capacity % 2:
            raise InvalidParameterError(f"capacity must be an even number >= 4. Got {capacity}.")
        self.capacity = capacity
        self.stride = 1
        self.seen = 0
        self.items: list[tuple[int, object]] = []
        self.latest: tuple[int, object] | None = None
        self.lock = threading.Lock()

    def add(self, step: int, value) -> None:
        with self.lock:
            self.latest = (int(step), value)
            self.seen += 1
            if self.seen % self.stride:
                return
            self.items.append((int(step), value))
            if len(self.items) >= self.capacity:
                self.items = self.items[1::2]
                self.stride *= 2

    def snapshot(self) -> dict:
        with self.lock:
            return {"latest": self.latest, "history": list(self.items), "stride": self.stride}
