"""What every query shares: argument checks, the subset, and labelling the answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modeldx.engine.subset import Sample, make_subset
from modeldx.errors import InvalidParameterError, LayerNotFoundError


def resolve_layers(store, layers) -> list[str]:
    """``None`` -> every stored layer; a name or names -> checked against the store."""
    if layers is None:
        if not store.layers:
            raise LayerNotFoundError(f"the store {store.path} holds no layers (a latent pass?)")
        return list(store.layers)
    names = [layers] if isinstance(layers, str) else list(layers)
    for name in names:
        store._layer_spec(name)  # raises LayerNotFoundError naming the stored layers
    return names


def check_neurons(store, layer: str, neurons) -> np.ndarray:
    n = store.neurons(layer)
    idx = np.atleast_1d(np.asarray(neurons))
    if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n:
        raise InvalidParameterError(
            f"neurons of layer {layer!r} must be integers in [0, {n}). Got {np.asarray(neurons).tolist()}."
        )
    return idx


def subset_for(store, items, weights) -> Sample | None:
    return make_subset(store, items, weights)


def source(store, subset: Sample | None) -> dict[str, Any]:
    """Where an answer came from: the full store, or which sample and fraction."""
    if subset is None:
        return {"exact": True, "items": store.n_items, "fraction": 1.0}
    return {"exact": False, "items": subset.size, "fraction": subset.size / max(store.n_items, 1),
            **subset.info}


def answer(frame: pd.DataFrame, query: str, store, subset: Sample | None, **params: Any) -> pd.DataFrame:
    """Attach the query's name, parameters and source to a result frame."""
    frame = frame.reset_index(drop=True)
    frame.attrs = {"query": query, "store": str(store.path), "params": params,
                   "source": source(store, subset)}
    return frame


def top_k_order(values: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Indices of the k largest (or smallest) values; ties go to the lower index."""
    keys = -values if largest else values
    return np.lexsort((np.arange(values.size), keys))[:k]


def item_columns(store, rows: np.ndarray) -> pd.DataFrame:
    cols = ["item_id", "split", "label", "pred", "correct", "confidence"]
    return store.items().iloc[rows][cols].reset_index(drop=True)
