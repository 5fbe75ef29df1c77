"""The per-class activation profile (histogram) of a neuron."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries._common import answer, check_neurons, subset_for
from modeldx.queries.registry import register


class ColumnRange:
    """Min and max of some columns of an array."""

    def __init__(self, name: str, columns: np.ndarray) -> None:
        self.arrays, self.columns = [name], columns

    def map(self, chunk: Chunk):
        block = chunk.arrays[self.arrays[0]][:, self.columns]
        if block.shape[0] == 0:
            return None
        return block.min(axis=0), block.max(axis=0)

    def combine(self, a, b):
        if a is None or b is None:
            return a if b is None else b
        return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])

    def finalize(self, state):
        return state


class ClassHistograms:
    """Weighted histograms per (class, column) over fixed, per-column bin edges."""

    def __init__(self, name: str, columns: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int,
                 num_classes: int, moments: bool = False) -> None:
        self.arrays, self.columns = [name], columns
        self.lo, self.bins, self.num_classes = lo.astype(np.float64), bins, num_classes
        width = (hi - lo).astype(np.float64)
        self.width = np.where(width > 0, width, 1.0)
        self.moments = moments

    def map(self, chunk: Chunk):
        block = chunk.arrays[self.arrays[0]][:, self.columns].astype(np.float64)
        labels = chunk.items["label"].to_numpy()
        ncol = block.shape[1]
        b = np.floor((block - self.lo) / self.width * self.bins).astype(np.int64)
        np.clip(b, 0, self.bins - 1, out=b)
        # one bincount over (class, column, bin) codes
        codes = (labels[:, None] * ncol + np.arange(ncol)[None, :]) * self.bins + b
        w = np.broadcast_to(chunk.weights[:, None], block.shape)
        hist = np.bincount(codes.ravel(), weights=w.ravel(),
                           minlength=self.num_classes * ncol * self.bins)
        state = {"hist": hist.reshape(self.num_classes, ncol, self.bins)}
        if self.moments:
            onehot = np.zeros((self.num_classes, labels.size))
            onehot[labels, np.arange(labels.size)] = chunk.weights
            state["w"] = onehot.sum(axis=1)
            state["n"] = np.bincount(labels, minlength=self.num_classes)
            state["s1"] = onehot @ block
            state["s2"] = onehot @ (block * block)
            # values exactly at the minimum (a ReLU's zeros) form an atom the bins would smear
            state["at_lo"] = onehot @ (block <= self.lo).astype(np.float64)
        return state

    def combine(self, a, b):
        return {k: a[k] + b[k] for k in a}

    def finalize(self, state):
        return state


@register("activation-profile", example={"neuron": 1, "bins": 8, "range": (0.0, 10.0)})
def activation_profile(store, *, layer: str, neuron: int, bins: int = 30, range=None, items=None,
                       weights=None, progress: bool = False, engine=None) -> pd.DataFrame:
    """Histogram of one neuron's activation for the items of each true class.

    Bin edges span ``range`` (default: the neuron's min and max over the items
    queried, found in a first pass). Counts are weighted by the subset's
    inclusion weights; ``fraction`` is the share of the class in each bin.

    Returns
    -------
    DataFrame
        ``label, bin, bin_left, bin_right, count, fraction``.

    Examples
    --------
    >>> activation_profile(store, layer="act4", neuron=3, bins=20)  # doctest: +SKIP
    """
    check_params("activation_profile", {"bins": bins}, {"bins": Interval(int, 1, 100_000)})
    col = check_neurons(store, layer, neuron)
    if col.size != 1:
        raise InvalidParameterError(f"neuron must be one neuron index. Got {neuron!r}.")
    name = f"acts/{layer}"
    subset = subset_for(store, items, weights)
    if range is None:
        found = run_reduction(store, ColumnRange(name, col), subset, engine=engine)
        lo, hi = (np.zeros(1), np.ones(1)) if found is None else found
    else:
        lo, hi = np.array([float(range[0])]), np.array([float(range[1])])
        if not hi[0] > lo[0]:
            raise InvalidParameterError(f"range must be (low, high) with low < high. Got {range!r}.")
    ncls = store.manifest.num_classes
    hist = run_reduction(store, ClassHistograms(name, col, lo, hi, bins, ncls), subset, engine=engine,
                         progress=progress)["hist"][:, 0, :]
    edges = np.linspace(lo[0], hi[0] if hi[0] > lo[0] else lo[0] + 1, bins + 1)
    totals = hist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(totals > 0, hist / totals, 0.0)
    frame = pd.DataFrame({
        "label": np.repeat(np.arange(ncls), bins), "bin": np.tile(np.arange(bins), ncls),
        "bin_left": np.tile(edges[:-1], ncls), "bin_right": np.tile(edges[1:], ncls),
        "count": hist.ravel(), "fraction": frac.ravel(),
    })
    return answer(frame, "activation-profile", store, subset, layer=layer, neuron=int(col[0]),
                  bins=bins, range=[float(lo[0]), float(hi[0])])
