"""Top-k inputs for a neuron or a group of neurons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, check_neurons, item_columns, subset_for, top_k_order
from modeldx.queries.registry import register


class TopRows:
    """Keeps the k rows with the largest (or smallest) score; the score comes from ``score(chunk)``.

    With ``carry`` (``carry(chunk)`` -> one row of values per chunk row), the kept rows'
    values travel in the state, so that a query needs no read of its own afterwards: the
    state is then ``(scores, rows, carried)``.
    """

    def __init__(self, arrays: list[str], score, k: int, largest: bool = True, carry=None) -> None:
        self.arrays, self.score, self.k, self.largest, self.carry = arrays, score, k, largest, carry

    def map(self, chunk: Chunk) -> tuple[np.ndarray, ...]:
        scores = self.score(chunk)
        keep = np.isfinite(scores)
        if self.carry is None:
            return self._top(scores[keep], chunk.rows[keep])
        return self._top(scores[keep], chunk.rows[keep], np.asarray(self.carry(chunk))[keep])

    def _top(self, scores: np.ndarray, rows: np.ndarray, *carried: np.ndarray) -> tuple[np.ndarray, ...]:
        # order by score, then by row so that ties are broken the same way on every run
        keys = -scores if self.largest else scores
        order = np.lexsort((rows, keys))[: self.k]
        return (scores[order], rows[order], *(c[order] for c in carried))

    def combine(self, a, b):
        return self._top(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))

    def finalize(self, state):
        if state is not None:
            return state
        return (np.empty(0), np.empty(0, dtype=np.int64)) + ((None,) if self.carry is not None else ())


@register("top-k-inputs", example={"neurons": [0, 3], "k": 4})
def top_k_inputs(store, *, layer: str, neurons, k: int = 10, largest: bool = True, items=None,
                 weights=None, progress: bool = False, engine=None) -> pd.DataFrame:
    """The k items that activate a neuron (or the mean of a group of neurons) most.

    ``largest=False`` gives the k that activate it least.

    Returns
    -------
    DataFrame
        ``rank, item_id, score, split, label, pred, correct, confidence``.

    Examples
    --------
    >>> top_k_inputs(store, layer="act4", neurons=17, k=5)  # doctest: +SKIP
    """
    check_params("top_k_inputs", {"k": k, "largest": largest},
                 {"k": Interval(int, 1, None), "largest": bool})
    idx = check_neurons(store, layer, neurons)
    name = f"acts/{layer}"
    subset = subset_for(store, items, weights)

    def score(chunk: Chunk) -> np.ndarray:
        return chunk.arrays[name][:, idx].mean(axis=1)

    scores, rows = run_reduction(store, TopRows([name], score, k, largest), subset, engine=engine,
                                 progress=progress)
    frame = item_columns(store, rows)
    frame.insert(0, "rank", np.arange(1, rows.size + 1))
    frame.insert(2, "score", scores)
    return answer(frame, "top-k-inputs", store, subset, layer=layer, neurons=idx.tolist(), k=k,
                  largest=largest)


__all__ = ["TopRows", "top_k_inputs", "top_k_order"]
