"""Linear CKA between two layers, or between two stores over the same items."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from modeldx.engine.local import Chunk, run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries._common import answer, resolve_layers, subset_for
from modeldx.queries.registry import register
from modeldx.store import open_store


class CrossMoments:
    """Weighted first and second moments of two activation blocks, and their cross product."""

    def __init__(self, name_a: str, name_b: str, other=None) -> None:
        self.name_a, self.name_b, self.other = name_a, name_b, other
        self.arrays = [name_a] if other is not None else sorted({name_a, name_b})

    def map(self, chunk: Chunk):
        x = chunk.arrays[self.name_a].astype(np.float64)
        if self.other is None:
            y = chunk.arrays[self.name_b].astype(np.float64)
        else:
            lo, hi = int(chunk.rows.min()), int(chunk.rows.max()) + 1
            y = self.other.read(self.name_b, lo, hi)[chunk.rows - lo].astype(np.float64)
        w = chunk.weights
        xw, yw = x * w[:, None], y * w[:, None]
        return {"w": w.sum(), "sx": xw.sum(0), "sy": yw.sum(0), "xx": xw.T @ x, "yy": yw.T @ y,
                "xy": xw.T @ y}

    def combine(self, a, b):
        return {k: a[k] + b[k] for k in a}

    def finalize(self, state):
        return state


def cka_from_moments(m) -> float:
    """Linear CKA = ||Cxy||_F^2 / (||Cxx||_F ||Cyy||_F) on weighted, centred covariances."""
    w = m["w"]
    mx, my = m["sx"] / w, m["sy"] / w
    cxx = m["xx"] / w - np.outer(mx, mx)
    cyy = m["yy"] / w - np.outer(my, my)
    cxy = m["xy"] / w - np.outer(mx, my)
    denom = np.linalg.norm(cxx) * np.linalg.norm(cyy)
    return float(np.linalg.norm(cxy) ** 2 / denom) if denom > 0 else float("nan")


@register("linear-cka")
def linear_cka(store, *, layer_a: str, layer_b: str, other=None, items=None, weights=None,
               progress: bool = False, engine=None) -> pd.DataFrame:
    """Linear CKA (Kornblith et al. 2019) between ``layer_a`` and ``layer_b``.

    With ``other`` (a second store over the same items, e.g. another model, or
    its path), ``layer_b`` is read from it. 1 means the representations agree up to a
    rotation and scale; 0 means no linear relation.

    Returns
    -------
    DataFrame
        One row: ``layer_a, layer_b, cka, n_items``.

    Examples
    --------
    >>> linear_cka(store, layer_a="act3", layer_b="act4")  # doctest: +SKIP
    """
    resolve_layers(store, layer_a)
    if isinstance(other, str | os.PathLike):  # a path, e.g. from the command line's -p other=...
        other = open_store(other)
    if other is not None:
        resolve_layers(other, layer_b)
        other.require_complete()
        same = (other.n_items == store.n_items and np.array_equal(
            other.items()["item_id"].to_numpy(), store.items()["item_id"].to_numpy()))
        if not same or other.manifest.dataset_fingerprint != store.manifest.dataset_fingerprint:
            raise InvalidParameterError(
                f"the stores {store.path} and {other.path} do not hold the same items of the same "
                "data set; CKA compares representations of identical inputs"
            )
    else:
        resolve_layers(store, layer_b)
    subset = subset_for(store, items, weights)
    moments = run_reduction(store, CrossMoments(f"acts/{layer_a}", f"acts/{layer_b}", other), subset,
                            engine=engine, progress=progress)
    n = subset.size if subset is not None else store.n_items
    frame = pd.DataFrame([{"layer_a": layer_a, "layer_b": layer_b, "cka": cka_from_moments(moments),
                           "n_items": n}])
    return answer(frame, "linear-cka", store, subset, layer_a=layer_a, layer_b=layer_b,
                  other=str(other.path) if other is not None else None)
