"""k nearest neighbours of an input in a layer's activation space."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, OneOf, check_params
from modeldx.engine.gather import gather_rows
from modeldx.engine.local import Chunk, run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries._common import answer, item_columns, resolve_layers, subset_for
from modeldx.queries.registry import register
from modeldx.queries.top_k_inputs import TopRows


def _row_of(store, item_id: int) -> int:
    ids = store.items()["item_id"].to_numpy()
    row = int(np.searchsorted(ids, item_id))
    if row >= ids.size or ids[row] != item_id:
        chunks = getattr(store, "chunks", None)  # a Snapshot of a capture in progress
        if chunks is not None and not store.complete:
            raise InvalidParameterError(
                f"item {item_id} is not captured yet: it is not among the {ids.size} items of the "
                f"{len(chunks)} of {store.manifest.n_chunks} chunks done in {store.path}.")
        raise InvalidParameterError(f"item {item_id} is not in the store {store.path}.")
    return row


@register("nearest-neighbors", example={"k": 4})
def nearest_neighbors(store, *, layer: str, item_id: int, k: int = 10, metric: str = "euclidean",
                      items=None, weights=None, progress: bool = False, engine=None) -> pd.DataFrame:
    """The k items closest to ``item_id`` in ``layer``'s activation space (itself excluded).

    ``metric`` is ``"euclidean"`` or ``"cosine"`` (1 - cosine similarity).

    Returns
    -------
    DataFrame
        ``rank, item_id, distance, split, label, pred, correct, confidence``.

    Examples
    --------
    >>> nearest_neighbors(store, layer="act4", item_id=60000, k=5)  # doctest: +SKIP
    """
    check_params("nearest_neighbors", {"k": k, "metric": metric, "item_id": item_id},
                 {"k": Interval(int, 1, None), "metric": OneOf("euclidean", "cosine"),
                  "item_id": Interval(int, 0, None)})
    resolve_layers(store, layer)
    name = f"acts/{layer}"
    row = _row_of(store, item_id)
    # the query item's row, read where the engine reads (a worker, on Dask)
    query = gather_rows(store, name, store.neurons(layer), np.array([row]), engine=engine)[0]
    query = query.astype(np.float64)
    qnorm = np.linalg.norm(query)
    subset = subset_for(store, items, weights)

    def distance(chunk: Chunk) -> np.ndarray:
        block = chunk.arrays[name].astype(np.float64)
        if metric == "euclidean":
            d = np.sqrt(np.maximum(((block - query) ** 2).sum(axis=1), 0.0))
        else:
            norms = np.linalg.norm(block, axis=1) * qnorm
            with np.errstate(invalid="ignore", divide="ignore"):
                d = 1.0 - np.where(norms > 0, block @ query / norms, 0.0)
        d[chunk.rows == row] = np.inf  # the item itself is not its own neighbour
        return d

    dist, rows = run_reduction(store, TopRows([name], distance, k, largest=False), subset,
                               engine=engine, progress=progress)
    frame = item_columns(store, rows)
    frame.insert(0, "rank", np.arange(1, rows.size + 1))
    frame.insert(2, "distance", dist)
    return answer(frame, "nearest-neighbors", store, subset, layer=layer, item_id=item_id, k=k,
                  metric=metric)
