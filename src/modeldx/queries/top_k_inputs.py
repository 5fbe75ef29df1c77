"""Top-k inputs for a neuron or a group of neurons."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, check_neurons, item_columns, subset_for, top_k_order
from modeldx.queries.registry import register


class TopRows:
    """Keeps the k rows with the largest (or smallest) score; the score comes from ``score(chunk)``."""

    def __init__(self, arrays: list[str], score, k: int, largest: bool = True) -> None:
        self.arrays, self.score, self.k, self.largest = arrays, score, k, largest

    def map(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        scores = self.score(chunk)
        keep = np.isfinite(scores)
        return self._top(scores[keep], chunk.rows[keep])

    def _top(self, scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # order by score, then by row so that ties are broken the same way on every run
        keys = -scores if self.largest else scores
        order = np.lexsort((rows, keys))[: self.k]
        return scores[order], rows[order]

    def combine(self, a, b):
        return self._top(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))

    def finalize(self, state):
        return state if state is not None else (np.empty(0), np.empty(0, dtype=np.int64))


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
