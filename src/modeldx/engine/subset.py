"""A subset of a store's items with weights: what a sample hands to a query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modeldx.errors import InvalidParameterError


@dataclass(frozen=True)
class Subset:
    """Store rows to read and the weight of each (1 for an unweighted subset).

    ``rows`` are positions in the store, sorted and unique; ``weights`` are
    inclusion weights (how many items of the full data each row stands for), so
    that weighted sums estimate full-data sums. ``info`` says where the subset
    came from and travels into every answer computed on it.
    """

    rows: np.ndarray
    weights: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.rows.size)


def make_subset(store, items=None, weights=None, info: dict[str, Any] | None = None) -> Subset | None:
    """Validate ``items`` (item ids of the store) and ``weights``; ``None`` means every item.

    ``items`` may also be a sample object with ``item_ids``, ``weights`` and ``info``.
    """
    if items is None:
        if weights is not None:
            raise InvalidParameterError("weights were given without items; pass the items they weigh")
        return None
    if hasattr(items, "item_ids"):
        weights = getattr(items, "weights", None) if weights is None else weights
        info = {**getattr(items, "info", {}), **(info or {})}
        items = items.item_ids
    ids = np.asarray(items)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise InvalidParameterError(f"items must be a 1-d array of integer item ids. Got dtype {ids.dtype}, "
                                    f"shape {ids.shape}.")
    w = np.ones(ids.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != ids.shape:
        raise InvalidParameterError(f"weights must have the shape of items {ids.shape}. Got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InvalidParameterError("weights must be finite and non-negative.")
    table_ids = store.items()["item_id"].to_numpy()
    rows = np.searchsorted(table_ids, ids)
    rows = np.clip(rows, 0, max(table_ids.size - 1, 0))
    missing = ids[(table_ids.size == 0) | (table_ids[rows] != ids)] if ids.size else ids
    if missing.size:
        raise InvalidParameterError(
            f"items {missing[:5].tolist()} are not in the store {store.path} "
            f"({store.n_items} items, ids {table_ids.min()}..{table_ids.max()})"
        )
    if np.unique(rows).size != rows.size:
        raise InvalidParameterError("items must not repeat an id.")
    order = np.argsort(rows, kind="stable")
    return Subset(rows[order], w[order], dict(info or {}))
