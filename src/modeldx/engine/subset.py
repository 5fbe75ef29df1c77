"""The one type of a weighted set of items (:class:`Sample`), and resolving one against a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modeldx.errors import InvalidParameterError


@dataclass
class Sample:
    """Items chosen from a data set or store, their inclusion weights, and how they were chosen.

    The one type for every weighted set of items: what a sampler selects, what
    :func:`modeldx.sample` saves and loads, and what a query runs on. ``weights``
    are inclusion weights (how many items of the full data each one stands for,
    so that weighted sums estimate full-data sums); ``info`` says where the items
    came from and travels into every answer computed on them. ``rows`` are the
    items' positions in the data they were drawn from (a store's rows, sorted
    and unique); they default to ``item_ids``, which is what they are for data
    without ids (the arrays a sampler is fitted on).

    Pass a sample to any query as ``items=sample`` (the weights come along), or to
    :func:`modeldx.capture` as ``items=sample.item_ids`` to capture only it.

    Examples
    --------
    >>> s = Sample(np.array([3, 7]), np.array([5.0, 5.0]), {"sample": "mine"})
    >>> s.size, s.name
    (2, 'mine')
    """

    item_ids: np.ndarray
    weights: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    rows: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rows is None:
            self.rows = self.item_ids

    @property
    def name(self) -> str:
        return str(self.info.get("sample", ""))

    @property
    def size(self) -> int:
        return int(self.item_ids.size)

    @property
    def fraction(self) -> float:
        return float(self.info.get("fraction", np.nan))

    def __repr__(self) -> str:
        return (f"Sample({self.name!r}, method={self.info.get('method')!r}, items={self.size}, "
                f"fraction={self.fraction:g})")


def make_subset(store, items=None, weights=None, info: dict[str, Any] | None = None) -> Sample | None:
    """Validate ``items`` (item ids of the store) and ``weights``; ``None`` means every item.

    ``items`` may also be a :class:`Sample` (its weights and info come along).
    Returns a :class:`Sample` sorted by its rows in ``store``.
    """
    if items is None:
        if weights is not None:
            raise InvalidParameterError("weights were given without items; pass the items they weigh")
        return None
    if isinstance(items, Sample):
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
    return Sample(ids[order], w[order], dict(info or {}), rows=rows[order])
