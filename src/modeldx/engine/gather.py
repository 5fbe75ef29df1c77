"""A reduction that gathers a few rows of one array, so that even a point read runs on the engine."""

from __future__ import annotations

import numpy as np

from modeldx.engine.local import Chunk, run_reduction
from modeldx.engine.subset import Sample


class GatherRows:
    """The rows of one array that a subset holds, in store order (meant for a few thousand rows)."""

    def __init__(self, name: str, width: int) -> None:
        self.arrays, self.width = [name], width

    def map(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        return chunk.rows, chunk.arrays[self.arrays[0]]

    def combine(self, a, b):
        return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])

    def finalize(self, state):
        if state is None:  # no rows
            return np.zeros((0, self.width), dtype=np.float32)
        order = np.argsort(state[0], kind="stable")
        return state[1][order]


def gather_rows(store, name: str, width: int, rows: np.ndarray, *, engine=None) -> np.ndarray:
    """Rows ``rows`` (sorted, unique store positions) of array ``name``, decoded, read on ``engine``:
    only the chunks that hold them are read."""
    rows = np.asarray(rows, dtype=np.int64)
    ids = store.items()["item_id"].to_numpy()[rows]
    chosen = Sample(ids, np.ones(rows.size), {"sample": "rows"}, rows=rows)
    return run_reduction(store, GatherRows(name, width), chosen, engine=engine)
