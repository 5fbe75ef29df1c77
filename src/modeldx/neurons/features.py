"""What a neuron cluster has learned: the items that activate it most."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, check_neurons, item_columns, subset_for
from modeldx.queries.profile import ColumnRange
from modeldx.queries.top_k_inputs import TopRows


def cluster_top_items(store, layer: str, neurons, *, k: int = 9, items=None, weights=None,
                      progress: bool = False, engine=None) -> pd.DataFrame:
    """The k items that activate a cluster of neurons most.

    An item's score is the mean, over the cluster's neurons, of each neuron's
    activation divided by that neuron's maximum (over the same items), so that
    every neuron counts alike and one large neuron does not decide alone. A
    neuron whose maximum is not positive (dead on these items) adds 0, and an
    item whose score is not positive is not a top item: a dead cluster has
    none, and a cluster active on fewer than k items has fewer. Two
    passes over the layer: the maxima, then the top k (ties to the lower row).

    Parameters
    ----------
    layer, neurons
        The layer and the indices of the cluster's neurons
        (``clusters.members(cid)``).
    k
        How many items.
    items, weights
        A subset (item ids or a :class:`~modeldx.engine.subset.Sample`), as for
        every query; the maxima are then the subset's.

    Returns
    -------
    DataFrame
        ``rank, item_id, score, split, label, pred, correct, confidence``; the
        score is in [0, 1] for non-negative activations (ReLU).

    Examples
    --------
    >>> cl = cluster_neurons(cm.means["act3"], active=cm.active["act3"])  # doctest: +SKIP
    >>> cluster_top_items(store, "act3", cl.members(0), k=9)
    """
    check_params("cluster_top_items", {"k": k}, {"k": Interval(int, 1, None)})
    idx = check_neurons(store, layer, neurons)
    name = f"acts/{layer}"
    subset = subset_for(store, items, weights)
    span = run_reduction(store, ColumnRange(name, idx), subset, engine=engine, progress=progress)
    peak = np.zeros(idx.size) if span is None else span[1].astype(np.float64)
    # 1/max for live neurons, 0 for those never positive: they neither help nor divide by zero
    inv = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)

    def score(chunk: Chunk) -> np.ndarray:
        s = (chunk.arrays[name][:, idx].astype(np.float64) @ inv) / idx.size
        return np.where(s > 0, s, np.nan)  # an item that does not activate the cluster is no top item

    scores, rows = run_reduction(store, TopRows([name], score, k), subset, engine=engine, progress=progress)
    frame = item_columns(store, rows)
    frame.insert(0, "rank", np.arange(1, rows.size + 1))
    frame.insert(2, "score", scores)
    return answer(frame, "cluster-top-items", store, subset, layer=layer, neurons=idx.tolist(), k=k)


__all__ = ["cluster_top_items"]
